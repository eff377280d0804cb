"""Generate the bundled synthetic tumour-subtype expression tables.

Run from anywhere (outputs are written next to this script)::

    python sample_data/make_sample_data.py

Generative model
----------------
Everything is simulated on the natural-log scale and exponentiated at the end,
so the written values are log-normal, non-negative and TPM-like (``log1p`` of
them is a sensible transform for a classifier).

For sample ``s`` of patient ``p`` (subtype ``y``) sequenced in batch ``b``, the
log-expression of gene ``g`` is::

    z[s, g] = mu[g]                                  # gene baseline
            + sum_k W[g, k] * f[s, k]                # correlated gene modules
            + u[p, g]                                # patient gene offsets
            + beta[b, g]                             # additive batch effect
            + c[s]                                   # sample depth offset
            + eps[s, g]                              # technical noise

    f[s, k] = M[y, k] + a[p, k] + e[s, k]            # module activity

* ``W`` is sparse: each gene belongs to at most one latent module (about
  three quarters of genes do), with a loading of random sign.  Genes sharing
  a module are therefore correlated.
* ``M`` holds the subtype effects.  A handful of named modules carry them
  (luminal, proliferation, basal, HER2 amplicon, ...) with modest effect
  sizes; the remaining modules are pure nuisance biology.
* ``a`` (patient module offsets) and ``u`` (patient gene offsets) are shared
  by all samples of a patient.  They make samples of the same patient more
  alike than samples of different patients, so a random-row split leaks and
  looks optimistic compared with a patient-grouped split.
* ``beta`` is drawn per batch; the new-cohort batch ``B4`` gets a somewhat
  larger effect so that a cohort-shift check has something mild to notice.

Outputs
-------
* ``tumour_subtypes.csv.gz``  training table (labelled, batches B1-B3)
* ``test_cohort.csv.gz``      labelled test cohort of new patients (B1-B3)
* ``new_cohort.csv.gz``       unlabelled new cohort of new patients (B4)
* ``markers.csv``             each subtype's planted marker genes (``write_markers``), the
  truth that ``mlpcli explain``'s gene rankings are checked against

The script is deterministic: fixed seeds and gzip ``mtime=0`` make repeated
runs byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

OUT_DIR = Path(__file__).resolve().parent
SEED = 20240611

# --- sizes --------------------------------------------------------------------
N_GENES = 2000
N_TRAIN_PATIENTS = 200
N_TEST_PATIENTS = 60
N_NEW_PATIENTS = 45
SAMPLES_PER_PATIENT = (1, 2, 3, 4)
SAMPLES_PER_PATIENT_PROBS = (0.10, 0.20, 0.30, 0.40)  # mean 3 samples/patient

# --- subtypes -------------------------------------------------------------------
SUBTYPES = ("LumA", "LumB", "Basal", "HER2")
SUBTYPE_PREVALENCE = (0.42, 0.27, 0.23, 0.08)  # HER2 is the rare class

# --- gene modules ---------------------------------------------------------------
N_MODULES = 40
FRACTION_GENES_IN_MODULES = 0.75
LOADING_MEAN = 0.55  # |loading| of a gene on its module
LOADING_SD = 0.15
NEGATIVE_LOADING_FRACTION = 0.3  # share of module genes that are anti-correlated
# Named marker modules (modules 0-7; the other modules carry no subtype signal)
# and their subtype effects on module activity.  Module activity has a
# patient + sample standard deviation of about 0.85, and each marker gene sees
# the effect scaled by its loading (~0.55), so per-gene effects are modest.
MARKER_EFFECT = 1.3
MARKER_MODULES = {
    # module name:     effect for (LumA, LumB, Basal, HER2), times MARKER_EFFECT
    "luminal":         (+1.0, +0.6, -1.2, -0.3),
    "oestrogen_resp":  (+1.0, +0.4, -1.0, -0.6),
    "proliferation":   (-0.9, +0.6, +0.9, +0.5),
    "cell_cycle":      (-0.6, +0.7, +0.5, +0.3),
    "basal_keratin":   (-0.4, -0.5, +1.3, -0.2),
    "immune_basal":    (-0.2, -0.3, +0.7, +0.2),
    "her2_amplicon":   (-0.3, -0.1, -0.4, +1.6),
    "erbb_signalling": (-0.2, +0.1, -0.3, +1.0),
}

# A gene is a planted marker of a subtype when its expected log-expression there differs from the mean
# over the other subtypes by at least this many of its within-subtype SDs (Cohen's d; 0.5, a "medium" effect).
MARKER_MIN_EFFECT = 0.5

# --- gene baselines and noise ---------------------------------------------------
GENE_LOG_MEAN = 1.5  # mean of mu[g] (natural log scale)
GENE_LOG_SD = 1.6
NOISE_SD_RANGE = (0.35, 0.7)  # per-gene technical noise sd, uniform
SAMPLE_DEPTH_SD = 0.08  # per-sample global offset

# --- random effects -------------------------------------------------------------
PATIENT_MODULE_SD = 0.6  # a[p, k]
PATIENT_GENE_SD = 0.35  # u[p, g]
SAMPLE_MODULE_SD = 0.6  # e[s, k]

# --- batches --------------------------------------------------------------------
TRAIN_BATCHES = ("B1", "B2", "B3")
TRAIN_BATCH_PROBS = (0.40, 0.35, 0.25)
TRAIN_BATCH_SD = 0.15  # additive per-gene batch shift (log scale)
NEW_BATCH = "B4"
NEW_BATCH_SD = 0.30

# --- output ---------------------------------------------------------------------
SIGNIFICANT_DIGITS = 3
MAX_DECIMALS = 3  # TPM-like precision: values below 0.0005 are written as 0
FLOAT_FORMAT = "%g"  # no trailing ".0" (3 significant digits fit in %g's 6)


@dataclass(frozen=True)
class GeneModel:
    """Cohort-independent gene parameters."""

    names: list[str]
    mu: np.ndarray  # (genes,)
    loadings: np.ndarray  # (genes, modules), one non-zero per row at most
    noise_sd: np.ndarray  # (genes,)
    subtype_effects: np.ndarray  # (subtypes, modules)
    batch_effects: dict[str, np.ndarray]  # batch -> (genes,)


def gene_names(n: int) -> list[str]:
    return [f"GENE{i:04d}" for i in range(1, n + 1)]


def subtype_effect_matrix() -> np.ndarray:
    """Module activity means per subtype; non-marker modules are zero."""
    effects = np.zeros((len(SUBTYPES), N_MODULES))
    for k, per_subtype in enumerate(MARKER_MODULES.values()):
        effects[:, k] = MARKER_EFFECT * np.asarray(per_subtype)
    return effects


def make_gene_model(rng: np.random.Generator) -> GeneModel:
    mu = rng.normal(GENE_LOG_MEAN, GENE_LOG_SD, N_GENES)

    loadings = np.zeros((N_GENES, N_MODULES))
    in_module = rng.random(N_GENES) < FRACTION_GENES_IN_MODULES
    module_of = rng.integers(0, N_MODULES, N_GENES)
    size = np.abs(rng.normal(LOADING_MEAN, LOADING_SD, N_GENES))
    p_sign = [NEGATIVE_LOADING_FRACTION, 1.0 - NEGATIVE_LOADING_FRACTION]
    sign = rng.choice([-1.0, 1.0], N_GENES, p=p_sign)
    rows = np.flatnonzero(in_module)
    loadings[rows, module_of[rows]] = (size * sign)[rows]

    noise_sd = rng.uniform(*NOISE_SD_RANGE, N_GENES)

    batch_effects = {b: rng.normal(0.0, TRAIN_BATCH_SD, N_GENES) for b in TRAIN_BATCHES}
    batch_effects[NEW_BATCH] = rng.normal(0.0, NEW_BATCH_SD, N_GENES)

    return GeneModel(
        names=gene_names(N_GENES),
        mu=mu,
        loadings=loadings,
        noise_sd=noise_sd,
        subtype_effects=subtype_effect_matrix(),
        batch_effects=batch_effects,
    )


def make_patients(
    rng: np.random.Generator,
    n_patients: int,
    first_id: int,
    batches: tuple[str, ...],
    batch_probs: tuple[float, ...],
) -> pd.DataFrame:
    """One row per patient: id, subtype, batch, number of samples.

    Subtype counts follow SUBTYPE_PREVALENCE exactly (largest remainder), then
    are shuffled, so every cohort has a predictable class balance.
    """
    expected = np.asarray(SUBTYPE_PREVALENCE) * n_patients
    counts = np.floor(expected).astype(int)
    shortfall = n_patients - counts.sum()
    counts[np.argsort(-(expected - counts), kind="stable")[:shortfall]] += 1
    labels = np.repeat(np.arange(len(SUBTYPES)), counts)
    rng.shuffle(labels)

    return pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(first_id, first_id + n_patients)],
            "subtype": labels,
            "batch": rng.choice(batches, n_patients, p=batch_probs),
            "n_samples": rng.choice(SAMPLES_PER_PATIENT, n_patients, p=SAMPLES_PER_PATIENT_PROBS),
        }
    )


def simulate_log_expression(
    rng: np.random.Generator, genes: GeneModel, patients: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    """Simulate per-sample log-expression; returns (sample metadata, z)."""
    n_pat = len(patients)
    patient_modules = rng.normal(0.0, PATIENT_MODULE_SD, (n_pat, N_MODULES))
    patient_genes = rng.normal(0.0, PATIENT_GENE_SD, (n_pat, N_GENES))

    pat_idx = np.repeat(np.arange(n_pat), patients["n_samples"].to_numpy())
    n = len(pat_idx)
    subtype = patients["subtype"].to_numpy()[pat_idx]
    batch = patients["batch"].to_numpy()[pat_idx]

    activity = (
        genes.subtype_effects[subtype]
        + patient_modules[pat_idx]
        + rng.normal(0.0, SAMPLE_MODULE_SD, (n, N_MODULES))
    )
    batch_shift = np.stack([genes.batch_effects[b] for b in batch])
    z = (
        genes.mu
        + activity @ genes.loadings.T
        + patient_genes[pat_idx]
        + batch_shift
        + rng.normal(0.0, SAMPLE_DEPTH_SD, (n, 1))
        + rng.normal(0.0, 1.0, (n, N_GENES)) * genes.noise_sd
    )
    meta = pd.DataFrame(
        {
            "patient_id": patients["patient_id"].to_numpy()[pat_idx],
            "batch": batch,
            "label": np.asarray(SUBTYPES)[subtype],
        }
    )
    return meta, z


def round_values(x: np.ndarray, digits: int, max_decimals: int) -> np.ndarray:
    """Round positive values to `digits` significant digits, and to at most
    `max_decimals` decimal places (keeps the files small and TPM-like)."""
    magnitude = np.floor(np.log10(np.where(x > 0, x, 1.0)))
    decimals = np.minimum(digits - 1 - magnitude, max_decimals)
    scale = 10.0**decimals
    return np.round(x * scale) / scale


def make_cohort(
    rng: np.random.Generator,
    genes: GeneModel,
    patients: pd.DataFrame,
    first_sample: int,
    labelled: bool,
) -> pd.DataFrame:
    meta, z = simulate_log_expression(rng, genes, patients)
    order = rng.permutation(len(meta))  # interleave patients like a real sample sheet
    meta = meta.iloc[order].reset_index(drop=True)
    values = round_values(np.exp(z[order]), SIGNIFICANT_DIGITS, MAX_DECIMALS)

    sample_ids = [f"S{i:04d}" for i in range(first_sample, first_sample + len(meta))]
    meta.insert(0, "sample_id", sample_ids)
    expr = pd.DataFrame(values, columns=genes.names)
    table = pd.concat([meta, expr], axis=1)
    if not labelled:
        table = table.drop(columns="label")
    return table


def write_csv(table: pd.DataFrame, name: str) -> Path:
    path = OUT_DIR / name
    table.to_csv(
        path,
        index=False,
        float_format=FLOAT_FORMAT,
        compression={"method": "gzip", "mtime": 0},  # mtime=0: byte-identical reruns
    )
    return path


# --- the single-cell file -------------------------------------------------------
SC_SEED = 20240612
SC_NAME = "single_cell.h5ad"
SC_CELLS = 3000
SC_GENES = 1000
SC_MARKERS = 25  # marker genes per cell type
# cell types and their shares; "pDC" is the rare one (about 1.5 % of cells)
SC_TYPES = ("T cell", "B cell", "NK cell", "monocyte", "dendritic cell", "pDC")
SC_TYPE_PROBS = (0.40, 0.20, 0.13, 0.18, 0.075, 0.015)
SC_DONORS = 12  # donor_id D01-D12, each in one of three batches
SC_BATCHES = ("run1", "run2", "run3")
SC_TARGET_SUM = 1e4  # log-normalised .X: log1p(counts / total * 1e4), as scanpy's normalize_total + log1p


def make_single_cell(rng: np.random.Generator):
    """A small synthetic single-cell data set as an AnnData: sparse raw UMI counts in the ``counts`` layer
    and log-normalised values in ``.X`` (both CSR float32); obs ``cell_type``, ``donor_id`` and ``batch``
    (categorical); var_names Ensembl-like ids with gene symbols in ``var["feature_name"]`` (CELLxGENE's
    layout).

    Counts: cell c of type t from donor d in batch b draws gene g from
    Poisson(size[c] * p[c, g]) with p[c, :] proportional to
    base[g] * marker[t, g] * donor[d, g] * batch[b, g] * Gamma(shape 2, mean 1) noise (a negative binomial),
    where base is a skewed (log-normal) gene profile, marker multiplies each type's marker genes 3-8 fold,
    and donor / batch effects are per-gene log-normal factors; library sizes are log-normal around 600
    UMIs, so about 85 % of the matrix is zero."""
    import anndata as ad
    import scipy.sparse as sp

    n, g = SC_CELLS, SC_GENES
    base = rng.lognormal(mean=0.0, sigma=1.6, size=g)
    marker = np.ones((len(SC_TYPES), g))
    for t in range(len(SC_TYPES)):
        genes_t = rng.choice(g, size=SC_MARKERS, replace=False)
        marker[t, genes_t] = rng.uniform(3.0, 8.0, size=SC_MARKERS)
    donor_batch = np.array([SC_BATCHES[k % len(SC_BATCHES)] for k in range(SC_DONORS)])
    donor_effect = rng.lognormal(0.0, 0.15, size=(SC_DONORS, g))
    batch_effect = rng.lognormal(0.0, 0.25, size=(len(SC_BATCHES), g))
    types = rng.choice(len(SC_TYPES), size=n, p=SC_TYPE_PROBS)
    donors = rng.integers(0, SC_DONORS, size=n)
    batch_index = np.array([SC_BATCHES.index(b) for b in donor_batch[donors]])
    size = rng.lognormal(np.log(600.0), 0.4, size=n)
    rates = base[None, :] * marker[types] * donor_effect[donors] * batch_effect[batch_index]
    rates *= rng.gamma(2.0, 0.5, size=(n, g))
    rates /= rates.sum(axis=1, keepdims=True)
    counts = rng.poisson(rates * size[:, None]).astype(np.float32)  # (n, g)
    counts = sp.csr_matrix(counts)
    total = np.asarray(counts.sum(axis=1)).ravel()
    X = sp.diags((SC_TARGET_SUM / np.maximum(total, 1)).astype(np.float32)) @ counts
    X.data = np.log1p(X.data).astype(np.float32)
    X = sp.csr_matrix(X, dtype=np.float32)
    obs = pd.DataFrame({
        "cell_type": pd.Categorical([SC_TYPES[t] for t in types], categories=list(SC_TYPES)),
        "donor_id": pd.Categorical([f"D{d + 1:02d}" for d in donors]),
        "batch": pd.Categorical(donor_batch[donors], categories=list(SC_BATCHES)),
    }, index=pd.Index([f"cell{c + 1:05d}" for c in range(n)], name="cell_id"))
    var = pd.DataFrame({"feature_name": [f"G{j + 1:04d}" for j in range(g)]},
                       index=pd.Index([f"ENSG{j + 100001:011d}" for j in range(g)], name="gene_id"))
    return ad.AnnData(X=X, obs=obs, var=var, layers={"counts": counts})


def write_h5ad(adata, name: str) -> Path:
    path = OUT_DIR / name
    adata.write_h5ad(path, compression="gzip")
    return path


def write_markers(genes: GeneModel, name: str = "markers.csv") -> Path:
    """Write each subtype's planted markers: (subtype, gene, module, shift, effect_size). shift is the
    gene's expected log-expression in the subtype minus its mean over the other subtypes (loading times the
    module's subtype contrast; positive: higher in the subtype); effect_size is shift over the gene's
    within-subtype SD of log-expression (module activity, patient and sample offsets, noise, batch), and
    a gene is kept when |effect_size| >= MARKER_MIN_EFFECT. Rows by subtype (SUBTYPES order), then gene."""
    modules = list(MARKER_MODULES)
    effects = genes.subtype_effects
    sd = np.sqrt((genes.loadings**2).sum(axis=1) * (PATIENT_MODULE_SD**2 + SAMPLE_MODULE_SD**2) + PATIENT_GENE_SD**2
                 + genes.noise_sd**2 + SAMPLE_DEPTH_SD**2 + TRAIN_BATCH_SD**2)
    rows = []
    for s, subtype in enumerate(SUBTYPES):
        contrast = effects[s] - np.delete(effects, s, axis=0).mean(axis=0)  # (modules,)
        shift = genes.loadings @ contrast  # (genes,): non-zero for genes of marker modules only
        for g in np.flatnonzero(np.abs(shift / sd) >= MARKER_MIN_EFFECT):
            module = int(np.flatnonzero(genes.loadings[g])[0])
            rows.append((subtype, genes.names[g], modules[module], f"{shift[g]:.3f}", f"{shift[g] / sd[g]:.3f}"))
    path = OUT_DIR / name
    columns = ["subtype", "gene", "module", "shift", "effect_size"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False, lineterminator="\n")
    return path


def main() -> None:
    root = np.random.SeedSequence(SEED)
    gene_seed, train_seed, test_seed, new_seed = root.spawn(4)
    genes = make_gene_model(np.random.default_rng(gene_seed))
    print(f"{write_markers(genes).name}: planted marker genes per subtype")

    train_batches = (TRAIN_BATCHES, TRAIN_BATCH_PROBS)
    cohorts = [
        # (file name, seed, n patients, (batches, batch probs), labelled)
        ("tumour_subtypes.csv.gz", train_seed, N_TRAIN_PATIENTS, train_batches, True),
        ("test_cohort.csv.gz", test_seed, N_TEST_PATIENTS, train_batches, True),
        ("new_cohort.csv.gz", new_seed, N_NEW_PATIENTS, ((NEW_BATCH,), (1.0,)), False),
    ]
    next_patient, next_sample = 1, 1
    for name, seed, n_patients, (batches, probs), labelled in cohorts:
        rng = np.random.default_rng(seed)
        patients = make_patients(rng, n_patients, next_patient, batches, probs)
        table = make_cohort(rng, genes, patients, next_sample, labelled)
        path = write_csv(table, name)
        next_patient += n_patients
        next_sample += len(table)

        summary = f"{path.name}: {len(table)} samples, {n_patients} patients"
        if labelled:
            counts = table["label"].value_counts().reindex(SUBTYPES)
            summary += ", " + ", ".join(f"{k}={v}" for k, v in counts.items())
        print(summary)

    try:
        import anndata
    except ImportError:  # the tables are written: say what the last file needs rather than end in a traceback
        print(f"{SC_NAME}: not written: it needs anndata (the h5ad extra: python -m pip install \".[h5ad]\" from the "
              "mlpcli checkout)")
        return
    del anndata  # (make_single_cell imports what it uses)
    adata = make_single_cell(np.random.default_rng(SC_SEED))
    path = write_h5ad(adata, SC_NAME)
    counts = adata.obs["cell_type"].value_counts().reindex(SC_TYPES)
    print(f"{path.name}: {adata.n_obs} cells x {adata.n_vars} genes, "
          f"{1 - adata.layers['counts'].nnz / (adata.n_obs * adata.n_vars):.0%} zeros, "
          + ", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
