r"""A primal-dual interior-point method for LPs with a few hundred to a few thousand dense rows.

    min c'x   s.t.  A x = b,   lower <= x <= upper   (either bound may be infinite)

The scenario dual (``solvers.scenario_dual``) has #terms + K rows and one column per
scenario with K + 1 entries: at K = 1,000 a 1,001 x 2,500 dense block. HiGHS's simplex
pivots on it at 20 ms each and needs thousands of pivots (60 s did not finish the first
restricted LP at 100,000 x 1,000); its IPX took 37 s (1.4 s per iteration). Here the
normal equations ``A Theta A'`` are formed with one BLAS product over the dense columns
(syrk) and factored by dense Cholesky (0.01 s), so an iteration costs about 0.07 s at
1,001 x 5,500 and 20-30 iterations (Mehrotra predictor-corrector) solve the LP.

An ES limit adds a cap row per scenario (``mu_s <= lam p_s / beta``, linking each weight to
the limit's multiplier): ``eliminate`` takes such rows out of the normal equations by their
structure, so they stay K-sized.

The answer is an interior point of the optimal face, not a vertex, accurate to ``tol``
(relative residuals and duality gap); callers that need a certificate compute a bound
from it (``scenario_dual.dual_bound``) rather than trusting the iterate.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from marginopt.solvers.status import SolveStatus

DENSE_NNZ = 16  # a column with more entries than this goes to the dense block
_BLAS: ThreadpoolController | None = None
_BLAS_THREADS = 1
THREADED_FLOPS = 5e7  # a normal matrix this costly is formed on all BLAS threads
REFINE = 1  # refinement steps per solve with the normal matrix (a second cost 15% at 100,000 x 200 and gained nothing)
STALL = 4  # stop after this many iterations without a better residual


@dataclass
class IPMResult:
    status: SolveStatus  # OPTIMAL, LIMIT (stalled: no progress) or ERROR
    x: np.ndarray
    y: np.ndarray  # row duals: c - A'y is the reduced cost
    objective: float  # c'x
    iterations: int
    residual: float  # max of relative primal, dual residuals and gap at the end


class _Matrix:
    """A split into dense columns (one BLAS block) and the rest (sparse), and the structure
    for eliminating rows (``eliminate``) from the normal equations.

    An eliminated row may hold one column that also has entries in the kept rows (its
    carrier), any columns of its own (slacks), and linking columns, which have entries in
    many eliminated rows. The normal matrix is then, per row, a diagonal in the eliminated
    block, and the linking columns a low-rank term: the system reduces to the kept rows."""

    def __init__(self, a: sp.csc_matrix, eliminate: np.ndarray | None = None) -> None:
        m, n = a.shape
        self.shape = a.shape
        gone = np.zeros(m, bool)
        if eliminate is not None:
            gone[eliminate] = True
        self.kept = np.flatnonzero(~gone)
        self.gone = np.flatnonzero(gone)
        # The kept rows split by column density; the eliminated rows (one entry per column but
        # for the linking ones) stay sparse: dense they were scenarios x scenarios.
        a1 = a[self.kept, :].tocsc() if self.gone.size else a
        nnz = np.diff(a1.indptr)
        self.dense = np.flatnonzero(nnz > DENSE_NNZ)
        self.sparse = np.flatnonzero(nnz <= DENSE_NNZ)
        self.d1 = np.ascontiguousarray(a1[:, self.dense].toarray()) if self.dense.size else np.zeros((len(self.kept), 0))
        self.s1 = a1[:, self.sparse].tocsc()
        self.link = np.zeros(0, np.int64)
        if not self.gone.size:
            return
        r2 = a[self.gone, :].tocsc()
        self.a2 = r2
        count = np.diff(r2.indptr)
        self.link = np.flatnonzero(count > 1)
        single = np.flatnonzero(count == 1)
        carries = nnz > 0
        self.row_of = np.full(n, -1)  # position among eliminated rows of a non-linking column's entry
        self.coef = np.zeros(n)
        self.row_of[single] = r2.indices[r2.indptr[single]]
        self.coef[single] = r2.data[r2.indptr[single]]
        self.carrier = single[carries[single]]
        self.own = single[~carries[single]]
        if np.bincount(self.row_of[self.carrier], minlength=len(self.gone)).max(initial=0) > 1:
            raise RuntimeError("an eliminated row may carry only one column with entries in the kept rows")  # a bug, not input
        u = a[:, self.link].toarray()  # the linking columns on kept and eliminated rows
        self.u1, self.u2 = u[self.kept], u[self.gone]

    def dot1(self, x: np.ndarray) -> np.ndarray:
        """A1 x over the kept rows (x a vector or a matrix of columns)."""
        out: np.ndarray = self.d1 @ x[self.dense] + self.s1 @ x[self.sparse]
        return out

    def tdot1(self, y: np.ndarray) -> np.ndarray:
        """A1' y over the kept rows (y a vector or a matrix of columns)."""
        out = np.empty((self.shape[1],) + y.shape[1:])
        out[self.dense] = self.d1.T @ y
        out[self.sparse] = self.s1.T @ y
        return out

    def dot(self, x: np.ndarray) -> np.ndarray:
        if not self.gone.size:
            return self.dot1(x)
        out = np.empty(self.shape[0])
        out[self.kept] = self.dot1(x)
        out[self.gone] = self.a2 @ x
        return out

    def tdot(self, y: np.ndarray) -> np.ndarray:
        if not self.gone.size:
            return self.tdot1(y)
        out: np.ndarray = self.tdot1(y[self.kept]) + self.a2.T @ y[self.gone]
        return out

    def normal(self, theta: np.ndarray) -> np.ndarray:
        """A1 diag(theta) A1' over the kept rows (the one product worth BLAS threads, see ``solve``)."""
        ds = self.d1 * np.sqrt(theta[self.dense])
        # numpy sees X @ X.T and calls syrk: half the flops of a general product. Switching BLAS
        # threads costs about a millisecond, more than a small product.
        with _threads(None) if ds.shape[0] ** 2 * ds.shape[1] > THREADED_FLOPS else contextlib.nullcontext():
            m: np.ndarray = ds @ ds.T
        if self.sparse.size:
            s = self.s1
            m += (s @ sp.diags(theta[self.sparse]) @ s.T).toarray()
        return m


class _Normal:
    """Solves ``A Theta A' y = r``: Cholesky of the kept rows' Schur complement (shifted until
    it factors, see ``_cholesky``), the eliminated rows by their diagonal. Linking columns
    enter the kept rows' matrix as a positive low-rank term (``U C^-1 U'``, from the system
    augmented by their multipliers), not by a Woodbury correction: that one subtracts and
    lost 8 digits near the optimum. Near the optimum this is a preconditioner that
    ``_direction`` refines against exact products."""

    def __init__(self, mat: _Matrix, theta: np.ndarray, shift: float) -> None:
        self.mat = mat
        self.theta = theta
        w = theta
        self.factor: tuple[np.ndarray, bool] | None = None
        self.shift = shift
        if mat.gone.size:
            w = theta.copy()
            w[mat.link] = 0.0
            # Per eliminated row: its own columns' and its carrier's share of the diagonal.
            other = np.bincount(mat.row_of[mat.own], theta[mat.own] * mat.coef[mat.own] ** 2, len(mat.gone))
            carried = np.zeros(len(mat.gone))
            carried[mat.row_of[mat.carrier]] = theta[mat.carrier] * mat.coef[mat.carrier] ** 2
            self.diag = other + carried + 1e-300
            # theta - theta^2 e^2 / d, written without the cancellation when the slack's share is small.
            j = mat.carrier
            w[j] = theta[j] * other[mat.row_of[j]] / self.diag[mat.row_of[j]]
        normal = mat.normal(w)
        if mat.link.size:
            t = mat.u2 / self.diag[:, None]
            self.ut = mat.u1 - self._carry(t)  # U1 - M12 D^-1 U2
            c = np.diag(1.0 / np.maximum(theta[mat.link], 1e-300)) + mat.u2.T @ t
            self.c = sla.cho_factor(c, check_finite=False)
            normal += self.ut @ sla.cho_solve(self.c, self.ut.T, check_finite=False)
        factored = _cholesky(normal, shift)
        if factored is not None:
            self.factor, self.shift = factored

    @property
    def ok(self) -> bool:
        return self.factor is not None

    def _carry(self, t: np.ndarray) -> np.ndarray:
        """M12 t: each carrier j moves theta_j e_j t_(row of j) along its kept-row column."""
        mat = self.mat
        j = mat.carrier
        v = np.zeros((mat.shape[1], t.shape[1]))
        v[j] = (self.theta[j] * mat.coef[j])[:, None] * t[mat.row_of[j]]
        return mat.dot1(v)

    def solve(self, r: np.ndarray) -> np.ndarray:
        mat, factor = self.mat, self.factor
        assert factor is not None
        if not mat.gone.size:
            out: np.ndarray = sla.cho_solve(factor, r, check_finite=False)
            return out
        r1, r2 = r[mat.kept, None], r[mat.gone, None]
        t = r2 / self.diag[:, None]
        rhs = r1 - self._carry(t)
        if mat.link.size:
            q = mat.u2.T @ t
            rhs = rhs - self.ut @ sla.cho_solve(self.c, q, check_finite=False)
        y1 = sla.cho_solve(factor, rhs, check_finite=False)
        j = mat.carrier
        back = np.zeros_like(r2)
        back[mat.row_of[j]] = (self.theta[j] * mat.coef[j])[:, None] * mat.tdot1(y1)[j]
        if mat.link.size:
            z = sla.cho_solve(self.c, self.ut.T @ y1 + q, check_finite=False)
            back += mat.u2 @ z
        out = np.empty(len(r))
        out[mat.kept] = y1[:, 0]
        out[mat.gone] = ((r2 - back) / self.diag[:, None])[:, 0]
        return out


def solve(c: np.ndarray, a: sp.spmatrix, b: np.ndarray, lower: np.ndarray, upper: np.ndarray, *, tol: float = 1e-10,
          max_iterations: int = 100, eliminate: np.ndarray | None = None) -> IPMResult:
    """Mehrotra's predictor-corrector on the bounded-variable LP above. ``eliminate``: rows
    to take out of the normal equations by their structure (see ``_Matrix``), e.g. one cap
    row per scenario, which would otherwise make them scenarios x scenarios.

    BLAS runs on one thread except for the normal matrix: at 1,001 rows OpenBLAS's two-thread
    Cholesky took 54 ms against 10 ms on one, and matrix-vector products 3 ms against 1.3.
    """
    # Overflow on an unbounded or infeasible LP shows as a non-finite residual: status ERROR.
    with _threads(1), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _solve(c, a, b, lower, upper, tol, max_iterations, eliminate)


def _solve(c: np.ndarray, a: sp.spmatrix, b: np.ndarray, lower: np.ndarray, upper: np.ndarray, tol: float,
           max_iterations: int, eliminate: np.ndarray | None) -> IPMResult:
    """``solve``'s body.

    Bound slacks ``sl = x - l``, ``su = u - x`` are variables of their own with their
    residuals in the Newton system: the start need not satisfy them, and recomputing
    ``x - l`` would lose a slack of 1e-17 next to a bound of 1 to cancellation."""
    mat = _Matrix(sp.csc_matrix(a), eliminate)
    c, b, lower, upper = (np.asarray(v, float) for v in (c, b, lower, upper))
    hl, hu = np.isfinite(lower), np.isfinite(upper)
    # A free column gets a small proximal term so the normal matrix stays defined.
    free = ~hl & ~hu
    lf, uf = np.where(hl, lower, 0.0), np.where(hu, upper, 0.0)
    x, y, sl, su, zl, zu = _start(mat, c, b, lf, uf, hl, hu)
    n_bounds = max(int(hl.sum() + hu.sum()), 1)
    bnorm, cnorm = 1.0 + np.abs(b).max(initial=0.0), 1.0 + np.abs(c).max(initial=0.0)
    shift = 1e-14
    status, residual = SolveStatus.LIMIT, math.inf
    best = (math.inf, x, y, 0)
    it = 0
    for it in range(1, max_iterations + 1):
        rb = b - mat.dot(x)
        rc = c - mat.tdot(y) - zl + zu
        pl = np.where(hl, x - lf - sl, 0.0)
        pu = np.where(hu, uf - x - su, 0.0)
        pobj = float(c @ x)
        dobj = float(b @ y + lf[hl] @ zl[hl] - uf[hu] @ zu[hu])
        pres = max(np.abs(rb).max(initial=0.0), np.abs(pl).max(initial=0.0), np.abs(pu).max(initial=0.0)) / bnorm
        dres = np.abs(rc).max(initial=0.0) / cnorm
        gap = abs(pobj - dobj) / (1.0 + abs(pobj))
        residual = max(pres, dres, gap)
        if not np.isfinite(residual):
            status = SolveStatus.ERROR
            break
        if residual < best[0]:
            best = (residual, x, y, it)
        if residual < tol:
            status = SolveStatus.OPTIMAL
            break
        if best[0] < 1e-6 and it - best[3] >= STALL:
            break  # round-off has taken over: answer with the best iterate
        mu = float((sl[hl] @ zl[hl] + su[hu] @ zu[hu]) / n_bounds)
        dinv = np.where(hl, zl / sl, 0.0) + np.where(hu, zu / su, 0.0) + np.where(free, 1e-8, 0.0)
        theta = 1.0 / dinv
        factor = _Normal(mat, theta, shift)
        if not factor.ok:
            status = SolveStatus.ERROR
            break
        shift = max(1e-14, factor.shift / 10.0)

        # Predictor (affine scaling), then the centred corrector with its second-order term.
        point = (rb, rc, pl, pu, sl, su, zl, zu, hl, hu)
        dx, dy, dzl, dzu, dsl, dsu = _direction(mat, factor, theta, point, -sl * zl, -su * zu)
        ap, ad = _steps(dsl, dsu, zl, dzl, zu, dzu, sl, su, hl, hu, 1.0)
        mu_aff = float(((sl + ap * dsl)[hl] @ (zl + ad * dzl)[hl] + (su + ap * dsu)[hu] @ (zu + ad * dzu)[hu])
                       / n_bounds)
        sigma = min(1.0, (mu_aff / mu) ** 3) if mu > 0 else 0.0
        dx, dy, dzl, dzu, dsl, dsu = _direction(mat, factor, theta, point, sigma * mu - sl * zl - dsl * dzl,
                                                sigma * mu - su * zu - dsu * dzu)
        ap, ad = _steps(dsl, dsu, zl, dzl, zu, dzu, sl, su, hl, hu, 0.995)
        x = x + ap * dx
        sl = np.where(hl, sl + ap * dsl, 1.0)
        su = np.where(hu, su + ap * dsu, 1.0)
        y = y + ad * dy
        zl = zl + ad * dzl
        zu = zu + ad * dzu
    residual, x, y, _ = best
    return IPMResult(status, x, y, float(c @ x), it, residual)


def _direction(mat: _Matrix, factor: _Normal, theta: np.ndarray, point: tuple[np.ndarray, ...],
               tl: np.ndarray, tu: np.ndarray) -> tuple[np.ndarray, ...]:
    """Newton step at ``point`` (residuals rb, rc, pl, pu; slacks, bound duals, bound masks) for
    complementarity targets ``sl dzl + zl dsl = tl``, ``su dzu + zu dsu = tu``."""
    rb, rc, pl, pu, sl, su, zl, zu, hl, hu = point
    rl = np.where(hl, tl - zl * pl, 0.0)
    ru = np.where(hu, tu - zu * pu, 0.0)
    rt = rc - np.where(hl, rl / sl, 0.0) + np.where(hu, ru / su, 0.0)
    rhs = rb + mat.dot(theta * rt)
    dy = factor.solve(rhs)
    # Near the optimum the normal matrix is ill-conditioned and the shifted factor is only a
    # preconditioner: refine against the exact product A Theta A' dy.
    for _ in range(REFINE):
        dy += factor.solve(rhs - mat.dot(theta * mat.tdot(dy)))
    dx = theta * (mat.tdot(dy) - rt)
    dzl = np.where(hl, (rl - zl * dx) / sl, 0.0)
    dzu = np.where(hu, (ru + zu * dx) / su, 0.0)
    return dx, dy, dzl, dzu, np.where(hl, dx + pl, 0.0), np.where(hu, pu - dx, 0.0)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """BLAS limited to ``n`` threads (None: its default) inside the block."""
    global _BLAS, _BLAS_THREADS
    if _BLAS is None:
        _BLAS = ThreadpoolController()  # after numpy and scipy loaded their BLAS
        _BLAS_THREADS = max((lib["num_threads"] for lib in _BLAS.info() if lib["user_api"] == "blas"), default=1)
    with _BLAS.limit(limits=_BLAS_THREADS if n is None else n, user_api="blas"):
        yield


def _start(mat: _Matrix, c: np.ndarray, b: np.ndarray, lf: np.ndarray, uf: np.ndarray, hl: np.ndarray,
           hu: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mehrotra's starting point: the least-norm x with A x = b and the least-squares y for
    A'y ~ c, their slacks and bound duals shifted positive in proportion to the problem's own
    scale (a unit start put a cost of 1e6 and slacks of 1 a million apart)."""
    n = len(c)
    factor = _Normal(mat, np.ones(n), 1e-10)
    if not factor.ok:
        x, y = np.zeros(n), np.zeros(len(b))
    else:
        x = mat.tdot(factor.solve(b))
        y = factor.solve(mat.dot(c))
    r = c - mat.tdot(y)
    sl = np.where(hl, x - lf, 1.0)
    su = np.where(hu, uf - x, 1.0)
    # Reduced cost positive: the lower bound's dual carries it, negative: the upper's.
    zl = np.where(hl, np.where(hu, np.maximum(r, 0.0), r), 0.0)
    zu = np.where(hu, np.where(hl, np.maximum(-r, 0.0), -r), 0.0)
    slacks = np.concatenate([sl[hl], su[hu]])
    duals = np.concatenate([zl[hl], zu[hu]])
    if slacks.size:
        dp = max(-1.5 * slacks.min(), 0.0)
        dd = max(-1.5 * duals.min(), 0.0)
        slacks, duals = slacks + dp, duals + dd
        prod = float(slacks @ duals)
        dp2 = 0.5 * prod / max(float(duals.sum()), 1e-300)
        dd2 = 0.5 * prod / max(float(slacks.sum()), 1e-300)
        dp, dd = dp + dp2 + 1e-8, dd + dd2 + 1e-8
        sl = np.where(hl, sl + dp, 1.0)
        su = np.where(hu, su + dp, 1.0)
        zl = np.where(hl, zl + dd, 0.0)
        zu = np.where(hu, zu + dd, 0.0)
    return x, y, sl, su, zl, zu


def _cholesky(normal: np.ndarray, shift: float) -> tuple[tuple[np.ndarray, bool], float] | None:
    """Cholesky of the normal matrix with its diagonal raised by ``shift`` relative to itself,
    raised further until it factors: near the optimum it is ill-conditioned. Returns the factor
    and the shift that worked, from which the next iteration starts. (A shift relative to the
    largest diagonal entry swamped every other row next to a free column's 1e8.)"""
    diag = np.diag(normal).copy()
    floor = 1e-300 + 1e-14 * float(np.abs(diag).max(initial=0.0))
    for _ in range(10):
        np.fill_diagonal(normal, diag * (1.0 + shift) + floor)
        try:
            return sla.cho_factor(normal, check_finite=False), shift
        except np.linalg.LinAlgError:
            shift = max(shift * 100.0, 1e-12)
    return None


def _steps(dsl: np.ndarray, dsu: np.ndarray, zl: np.ndarray, dzl: np.ndarray, zu: np.ndarray, dzu: np.ndarray,
           sl: np.ndarray, su: np.ndarray, hl: np.ndarray, hu: np.ndarray, eta: float) -> tuple[float, float]:
    """Largest primal and dual steps (times ``eta``, at most 1) keeping slacks and bound duals positive."""
    ap = min(1.0, _ratio(sl, dsl, hl), _ratio(su, dsu, hu))
    ad = min(1.0, _ratio(zl, dzl, hl), _ratio(zu, dzu, hu))
    return min(1.0, eta * ap), min(1.0, eta * ad)


def _ratio(v: np.ndarray, dv: np.ndarray, mask: np.ndarray) -> float:
    neg = mask & (dv < 0)
    return float(np.min(-v[neg] / dv[neg])) if neg.any() else math.inf
