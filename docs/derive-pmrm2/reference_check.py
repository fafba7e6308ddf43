"""A clean-room float64 reading of Derive's PMRM_2 (written from methodology.md, beside this
file), kept as the record of how that reading was checked: it reproduces 138 of the 139
published cases in ../shared/data/derive_pmrm2/ (test_67, which Derive's own suite skips as
an invalid setup, is the exception). Not part of the package: issue 5 builds the model as a
marginopt preset on the scenario engine, and its tests compare that with the cases directly.

    .venv/bin/python docs/derive-pmrm2/reference_check.py [CASE.json ...]
"""
import glob
import json
import math
import os
import sys

YEAR = 365 * 86400

def ncdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))

def b76(F, K, sigma, T_sec, disc):
    """returns (call, put) undiscounted-forward Black76 with discount factor disc"""
    if K == 0:
        return F * disc, 0.0
    if F == 0:
        return 0.0, K * disc
    tau = T_sec / YEAR
    tv = sigma * math.sqrt(tau)
    m = K / F
    if tv >= 24.0:
        c = 1.0
    else:
        if tv == 0.0:
            tv = 1e-18
        k = math.log(m)
        d1 = (0.5 * tv * tv - k) / tv
        d2 = d1 - tv
        c = max(ncdf(d1) - m * ncdf(d2), 0.0)
    p = max(c + m - 1.0, 0.0)
    call = min(c * F * disc, F * disc)
    put = min(p * F * disc, K * disc)
    return call, put

def svi_vol(K, a, b, rho, m, s, F, tau):
    if K == 0:
        return 0.0
    kb = 4.0 * math.sqrt(a + b * s)
    k = math.log(K / F)
    k = max(-kb, min(kb, k))
    w = a + b * (math.sqrt((k - m) ** 2 + s * s) + rho * (k - m))
    if w < 0:
        raise ValueError("SVI w<0")
    w = min(w, 144.0)
    return math.sqrt(w / tau)

def f(x):
    return float(x)

def load(path):
    return json.load(open(path))

def compute(d):
    S = d['Scenario']; P = d['Parameters']
    vs, mp, bc, oc, sk = P['VolShock'], P['Margin'], P['BasisContingency'], P['OtherContingency'], P['SkewShock']
    spot = f(S['SpotPrice']); spot_conf = f(S['SpotConfidence'])
    stable = f(S['StablePrice'])
    nperp = f(S['NumPerps']); perp_price = f(S['PerpPrice'])
    cash = f(S['Cash'])
    perp_value = f(S['UnrealisedPerpPNL']) + f(S['UnrealisedFunding'])
    port_conf = spot_conf
    if nperp != 0:
        port_conf = min(port_conf, f(S['PerpConfidence']))
    conf_thr = f(oc['CONF_THRESHOLD']); conf_margin = f(oc['CONF_MARGIN'])
    def conf_cont(c, notional):
        return (1 - c) * conf_margin * notional if c < conf_thr else 0.0
    dte_floor = int(f(vs['DTE_FLOOR']) * 86400)  # Solidity: integer seconds
    up_s, dn_s = f(bc['SCENARIO_SPOT_UP']), f(bc['SCENARIO_SPOT_DOWN'])

    # ---- expiries
    feeds = {int(x['FeedExpiry']): x for x in S['OptionFeeds']}
    expiries = {}
    for o in S['Options']:
        T = int(o['Expiry'])
        e = expiries.get(T)
        if e is None:
            fd = feeds[T]
            Fw = f(fd['Forward'])
            if T < 1800:
                fixed, var = Fw * (1800 - T) / 1800, Fw * T / 1800
            else:
                fixed, var = 0.0, Fw
            rate = max(f(fd['Rate']), 0.0)
            sv = [f(x) for x in fd['SVIparam']]
            e = dict(T=T, fixed=fixed, var=var, rate=rate, disc=math.exp(-rate * T / YEAR),
                     conf=min(f(fd['ForwardConfidence']), f(fd['RateConfidence'])), sv=sv,
                     volconf=f(fd['OptionVolConfidences']), opts=[], net=0.0)
            expiries[T] = e
        K = f(o['Strike'])
        vol = svi_vol(K, *e['sv'])
        e['conf'] = min(e['conf'], e['volconf'])
        e['net'] += abs(f(o['Amount']))
        e['opts'].append(dict(K=K, vol=vol, amt=f(o['Amount']), call=bool(o['IsCall'])))

    def shocked_mtm(e, spot_shock, vdir):
        vshock, minvol = 1.0, 0.0
        if vdir == 'Up':
            vshock, minvol = e['vup'], f(vs['MIN_VOL_EVAL_SHOCKED'])
        elif vdir == 'Down':
            vshock = e['vdn']
        F = e['var'] * spot_shock + e['fixed']
        tot = 0.0
        for o in e['opts']:
            v = max(minvol, o['vol'] * vshock)
            c, p = b76(F, o['K'], v, e['T'], e['disc'])
            tot += (c if o['call'] else p) * o['amt']
        return tot

    def skew_mtm(e, vdir):
        lin = vdir == 'LINEAR'
        F = e['var'] + e['fixed']
        st = math.sqrt(e['T'] / YEAR)
        cap = (f(sk['LINEAR_CBASE']) * st + f(sk['LINEAR_SCALE_CAP'])) if lin else (f(sk['ABS_CBASE']) * st + f(sk['ABS_SCALE_CAP']))
        volparam = f(sk['VOL_PARAM_STATIC']) + st * f(sk['VOL_PARAM_SCALE'])
        kstar = max(f(sk['MIN_K_STAR']), st * f(sk['MIN_WIDTH_SCALE']) * volparam)
        tot = 0.0
        for o in e['opts']:
            k = math.log(o['K'] / F)
            if not lin:
                k = abs(k)
            if k >= 0:
                mult = 1 + min(cap, k * cap / kstar)
            else:
                mult = 1 + max(-cap, k * cap / kstar)
            v = o['vol'] * max(mult, 0.0)
            c, p = b76(F, o['K'], v, e['T'], e['disc'])
            tot += (c if o['call'] else p) * o['amt']
        return tot

    perp_notional = abs(nperp) * spot
    MMC = perp_notional * f(oc['MM_PERP_PERCENT'])
    IMC = perp_notional * f(oc['IM_PERP_PERCENT']) + conf_cont(port_conf, perp_notional)
    total_mtm = perp_value
    basis = 0.0
    out = dict(option_mtm=0.0)
    for e in expiries.values():
        e['conf'] = min(port_conf, e['conf'])
        e['mtm'] = shocked_mtm(e, 1.0, 'None')
        total_mtm += e['mtm']; out['option_mtm'] += e['mtm']
        upm, dnm = shocked_mtm(e, up_s, 'None'), shocked_mtm(e, dn_s, 'None')
        bcont = min(upm - e['mtm'], dnm - e['mtm'], 0.0)
        basis += bcont * (f(bc['BASIS_CONT_ADD_FACTOR']) + f(bc['BASIS_CONT_MULT_FACTOR']) * e['T'] / YEAR)
        # vol shocks
        ratio = 30 * 86400 / max(e['T'], dte_floor)
        pw = f(vs['SHORTTERMPOWER']) if e['T'] <= 30 * 86400 else f(vs['LONGTERMPOWER'])
        ms = math.exp(math.log(ratio) * pw)
        e['vup'] = 1 + f(vs['VOLRANGEUP']) * ms
        e['vdn'] = max(0.0, 1 - f(vs['VOLRANGEDOWN']) * ms)
        # static discounts
        tau = e['T'] / YEAR
        e['sdp'] = f(mp['BASE_STATIC_DISCOUNT']) * math.exp(-tau * (e['rate'] * f(mp['LONG_RATE_MULTSCALE']) + f(mp['LONG_RATE_ADDSCALE'])))
        sdn = f(mp['BASE_STATIC_DISCOUNT_NEG']) / math.exp(-tau * (e['rate'] * f(mp['SHORT_RATE_MULTSCALE']) + f(mp['SHORT_RATE_ADDSCALE'])))
        e['sdn'] = min(1.0 / e['disc'], sdn)
        # option contingency: per strike net
        bystrike = {}
        for o in e['opts']:
            bystrike.setdefault(o['K'], []).append(o['amt'])
        naked = 0.0
        for K, amts in bystrike.items():
            assert len(amts) <= 2
            naked += max(0.0, -sum(amts)) if len(amts) == 2 and amts[0] * amts[1] < 0 else sum(-a for a in amts if a < 0)
        MMC += naked * spot * f(oc['MM_OPTION_PERCENT'])
        IMC += naked * spot * f(oc['IM_OPTION_PERCENT'])
        IMC += conf_cont(e['conf'], e['net'] * spot)
    colls = []
    out['coll_mtm'] = 0.0
    for c in S['Collaterals']:
        val = f(c['Amount']) * f(c['Price']) / stable
        conf = min(f(c['Confidence']), spot_conf)
        total_mtm += val; out['coll_mtm'] += val
        MMC += val * f(c['MMHaircut'])
        IMC += val * f(c['IMHaircut']) + conf_cont(conf, val)
        colls.append((val, bool(c['IsRiskCancelling'])))

    pnls = []
    for sc in P['Scenarios']:
        ss, vd, damp = f(sc['SpotShock']), sc['VolShockDirection'], f(sc['DampeningFactor'])
        pnl = nperp * (ss - 1) * perp_price * damp if nperp != 0 else 0.0
        for e in expiries.values():
            if vd in ('LINEAR', 'ABS'):
                m = skew_mtm(e, vd)
            else:
                m = shocked_mtm(e, ss, vd)
            m *= e['sdp'] if m >= 0 else e['sdn']
            ep = (m - e['mtm']) * damp
            if vd in ('LINEAR', 'ABS'):
                ep = -abs(ep)
            pnl += ep
        for val, rc in colls:
            if rc:
                pnl += val * (ss - 1) * damp
        pnls.append(pnl)
    minspan = min([basis] + pnls)
    mf_mm = f(mp['MM_LOSS_FACTOR']); mf_im = f(mp['IM_LOSS_FACTOR'])
    if stable < f(oc['PEG_LOSS_THRESHOLD']):
        mf_im += (f(oc['PEG_LOSS_THRESHOLD']) - stable) * f(oc['PEG_LOSS_FACTOR'])
    MM = minspan * mf_mm - MMC + total_mtm + cash
    IM = minspan * mf_im - MMC - IMC + total_mtm + cash
    out.update(pnls=pnls, basis=basis, MM=MM, IM=IM, MMC=MMC, IMC=IMC, mtm=total_mtm, exp=expiries)
    return out

def expected_losses(d):
    r = d['Result']
    return [float(x[2]) for x in r['reg_losses']] + [float(x[2]) for x in r['tail_losses']] + [float(x[1]) for x in r['skew_losses']]

def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)

if __name__ == '__main__':
    files = sys.argv[1:] or sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'data', 'derive_pmrm2', '*.json')), key=lambda s: int(os.path.basename(s).split('_')[1]))
    for p in files:
        d = load(p); r = d['Result']
        o = compute(d)
        exp = expected_losses(d)
        assert len(exp) == len(o['pnls']), (p, len(exp), len(o['pnls']))
        # scenario metric like Derive test: abs 1e-8 if tiny else rel
        worst_sc = 0.0
        for a, b in zip(o['pnls'], exp):
            err = abs(a - b) if (abs(a) < 1e-10 or abs(b) < 1e-10) else rel(a, b)
            worst_sc = max(worst_sc, err)
        em, ei = rel(o['MM'], r['MM']), rel(o['IM'], r['IM'])
        eo = abs(o['option_mtm'] - r['OptionMTM']) / max(1.0, abs(r['OptionMTM']))
        ec = abs(o['coll_mtm'] - r['CollateralMTM'])
        eb = abs(o['basis'] - r['ForwardContingency']) / max(1.0, abs(r['ForwardContingency']))
        flag = 'OK ' if max(worst_sc, em, ei) < 1e-6 else 'BAD'
        print(f"{flag} {os.path.basename(p)[:58]:58s} sc {worst_sc:.1e} MM {em:.1e} IM {ei:.1e} optMTM {eo:.1e} collMTM {ec:.1e} basis {eb:.1e}")
