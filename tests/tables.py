"""Small synthetic tables for end-to-end tests: every task type, with patients and batches."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd


def make_table(task: str = "multiclass", n_patients: int = 40, per_patient: int = 3, n_features: int = 12,
               n_classes: int = 3, seed: int = 0, signal: float = 2.0, string_labels: bool = True) -> pd.DataFrame:
    """A learnable table: class (or target) signal in the first features, a patient effect, three batches.

    Columns: sample_id, patient_id, batch, the target column(s), then f00, f01, ...
    """
    rng = np.random.default_rng(seed)
    n = n_patients * per_patient
    patient = np.repeat(np.arange(n_patients), per_patient)
    X = rng.normal(size=(n, n_features))
    X += np.repeat(rng.normal(scale=0.3, size=(n_patients, n_features)), per_patient, axis=0)
    batch = np.array(["B1", "B2", "B3"])[np.repeat(rng.integers(0, 3, n_patients), per_patient)]
    df = pd.DataFrame({"sample_id": [f"S{i:04d}" for i in range(n)], "patient_id": [f"P{p:03d}" for p in patient],
                       "batch": batch})
    if task in ("binary", "multiclass"):
        k = 2 if task == "binary" else n_classes
        cls = np.repeat(np.arange(n_patients) % k, per_patient)
        for c in range(k):
            X[cls == c, c] += signal
        names = np.array(["ctrl", "case"] if k == 2 else [f"type{chr(65 + c)}" for c in range(k)])
        df["label"] = names[cls] if string_labels else cls
    elif task == "multilabel":
        Y = (rng.random((n_patients, 3)) < 0.5).astype(int)
        Y = np.repeat(Y, per_patient, axis=0)
        for j in range(3):
            X[:, j] += signal * (Y[:, j] - 0.5) * 2
            df[f"lab{j}"] = Y[:, j]
    elif task == "regression":
        y = X[:, 0] * 3.0 + X[:, 1] * 1.5 + rng.normal(scale=0.3, size=n) + 50.0
        df["label"] = y
    else:
        raise ValueError(task)
    feats = pd.DataFrame(X, columns=[f"f{j:02d}" for j in range(n_features)])
    return pd.concat([df, feats], axis=1)


def write_table(tmp_path, name: str = "data.csv", **kwargs) -> str:
    path = tmp_path / name
    make_table(**kwargs).to_csv(path, index=False)
    return str(path)


def lines_of(df: pd.DataFrame, sep: str = ",") -> list[str]:
    """A table's CSV text as lines (header first), to be broken by hand."""
    return df.to_csv(index=False, sep=sep).splitlines()


def ragged(lines: list[str], line: int, kind: str, sep: str = ",", drop: int = 7) -> list[str]:
    """`lines` with file line `line` (1-based, the header is line 1) given a field too many ("extra": a
    value slipped in, every later value would shift one column right) or too few (field `drop` removed)."""
    out = list(lines)
    fields = out[line - 1].split(sep)
    if kind == "extra":
        fields.insert(5, "99.0")
    else:
        fields.pop(drop)
    out[line - 1] = sep.join(fields)
    return out


def cell_counts(n_cells: int = 120, n_genes: int = 20, seed: int = 0, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """(cells, genes) Poisson counts whose 3 cell types raise 5 genes each, and the types (0, 1, 2) (n_cells,)."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, 3, n_cells)
    rate = np.full((3, n_genes), 0.5)
    for t in range(3):
        rate[t, t * 5:(t + 1) * 5] = 4.0
    return rng.poisson(rate[types]).astype(dtype), types


SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_data",
                      "tumour_subtypes.csv.gz")


def _labelled(path, labels, n=60):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"g{j}" for j in range(4)])
    frame.insert(0, "label", [labels[i % len(labels)] for i in range(n)])
    if str(path).endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def _table(n_pat=60, spp=2, genes=12, classes=("A", "B", "C"), batch_of=None, shift=None, seed=0, sig=1.0):
    """Patients with `spp` samples each, class centres `sig` apart; batch_of(p) names patient p's batch;
    shift {batch: added to the first 4 genes}."""
    rng = np.random.default_rng(seed)
    centres = {c: rng.normal(0, sig, genes) for c in classes}
    rows = []
    for p in range(n_pat):
        c = classes[p % len(classes)]
        b = batch_of(p) if batch_of is not None else f"S{p % 3 + 1}"
        for s in range(spp):
            x = centres[c] + rng.normal(0, 1, genes)
            if shift and b in shift:
                x[:4] += shift[b]
            rows.append({"sample_id": f"s{p}_{s}", "patient_id": f"P{p:03d}", "batch": b, "label": c,
                         **{f"g{j}": x[j] for j in range(genes)}})
    return pd.DataFrame(rows)


def _features(df):
    return [c for c in df.columns if c.startswith("f")]


def risk_cohort(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """A binary clinical-style table: pid, eight protein measurements prot0..prot7 and label event / none, the
    event's log-odds -0.8 + shift + a linear signal in the first three (``shift``: another baseline risk)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    z = -0.8 + shift + X[:, :3] @ np.array([1.0, -0.8, 0.6])
    y = rng.random(n) < 1 / (1 + np.exp(-z))
    d = pd.DataFrame(X, columns=[f"prot{j}" for j in range(8)])
    d.insert(0, "pid", [f"s{seed}_{i}" for i in range(n)])
    d["label"] = np.where(y, "event", "none")
    return d


def site_population(rng, means: np.ndarray, n_patients: int, per_patient: int, mix, start: int, shift=None,
                    scale: float = 1.0, noise: float = 1.0) -> pd.DataFrame:
    """Patients of classes drawn from ``mix`` (one mean row per class in ``means`` (k, d)): the class mean, a patient
    effect (SD 0.5) and noise of SD ``noise`` per sample; a site's samples are then scaled and shifted (a platform's
    gain and offsets). Columns patient_id (P{start}, ...), label (c0, c1, ...), g0, g1, ... (for
    ``benchmarks/bench_conformal.py --part site`` and its test)."""
    k, d = means.shape
    y = rng.choice(k, n_patients, p=mix)
    rows, labels, patients = [], [], []
    for i in range(n_patients):
        own = rng.normal(0, 0.5, d)
        for _ in range(per_patient):
            x = means[y[i]] + own + rng.normal(0, noise, d)
            rows.append(x if shift is None else x * scale + shift)
            labels.append(f"c{y[i]}")
            patients.append(f"P{start + i}")
    frame = pd.DataFrame(np.array(rows), columns=[f"g{j}" for j in range(d)])
    frame.insert(0, "patient_id", patients)
    frame.insert(1, "label", labels)
    return frame


def write_cellranger(directory, X, *, ids=None, symbols=None, types=None, barcodes=None, prefix: str = "",
                     legacy: bool = False, compressed: bool = True, integer: bool | None = None,
                     features_header: str | None = None, barcodes_header: str | None = None,
                     transposed: bool = False) -> list[str]:
    """Cell Ranger's three files for counts X (cells x features, dense or sparse) in ``directory`` (made when
    missing): matrix.mtx (features x cells; cells x features with ``transposed``, as a hand-written export may have
    it; integers when ``integer``, by X's dtype when None), features.tsv (id, symbol, type: ENSG0..., GENE0... and
    Gene Expression unless given; genes.tsv of id and symbol with ``legacy``, as Cell Ranger 2 wrote) and
    barcodes.tsv (AAAC000000-1, ... unless given), gzipped unless not ``compressed`` (at level 1: gzip's default
    took 4 of a fixture's 4.4 s), each name after ``prefix`` (GEO's GSM..._), a header line first in features or
    barcodes when given. Returns the barcodes."""
    import gzip

    import scipy.io
    import scipy.sparse as sp

    os.makedirs(directory, exist_ok=True)
    n_cells, n_features = X.shape
    ids = [f"ENSG{j:011d}" for j in range(n_features)] if ids is None else list(ids)
    symbols = [f"GENE{j}" for j in range(n_features)] if symbols is None else list(symbols)
    types = ["Gene Expression"] * n_features if types is None else list(types)
    barcodes = [f"AAAC{i:06d}-1" for i in range(n_cells)] if barcodes is None else [str(b) for b in barcodes]
    M = sp.coo_matrix(X if transposed else sp.coo_matrix(X).T)
    whole = np.issubdtype(M.dtype, np.integer) if integer is None else integer
    gz = ".gz" if compressed else ""

    def opened(name: str, mode: str):
        path = os.path.join(directory, f"{prefix}{name}{gz}")
        return gzip.open(path, mode, compresslevel=1) if compressed else open(path, mode)

    with opened("matrix.mtx", "wb") as fh:
        scipy.io.mmwrite(fh, M.astype(np.int64) if whole else M, field="integer" if whole else None)
    with opened("genes.tsv" if legacy else "features.tsv", "wt") as fh:
        if features_header:
            fh.write(features_header + "\n")
        fh.writelines(f"{i}\t{s}\n" if legacy else f"{i}\t{s}\t{t}\n" for i, s, t in zip(ids, symbols, types))
    with opened("barcodes.tsv", "wt") as fh:
        if barcodes_header:
            fh.write(barcodes_header + "\n")
        fh.writelines(f"{b}\n" for b in barcodes)
    return barcodes
