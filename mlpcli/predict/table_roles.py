"""Which columns of a table to predict on are ids, groups, batches and labels, and an .h5ad file opened with the
model's training choices (matrix, gene names) as its defaults."""

from __future__ import annotations

import dataclasses


from .. import data
from ..data.roles import listed_names
from ..data.streamed import open_table
from ..errors import DataError, OptionError
from ..model_io import Model
from ..model_summary import trained_matrix
from .columns import RoleFlags


def sheet_roles(resolved: RoleFlags, given: RoleFlags, table_columns, need_target: bool,
                 by: str | None = None) -> list[str | None]:
    """The role columns a sample sheet is joined for (``SampleJoin.select``, where a role on a column both files
    have is an error): the target only when the command reads it (predict never does; evaluate's truth in both
    files stays an error, whichever copy it took could be the stale one), and a group or batch column the model's
    roles default to only when the table lacks it: where both files have it and no option named it, the table's
    copy is used, as the join's note says (a sheet exported from an .h5ad file's .obs repeats its donor column)."""
    columns = set(map(str, table_columns))

    def chosen(name: str | None, typed) -> str | None:
        return name if typed or name not in columns else None

    return [*(resolved.target if need_target else ()), chosen(resolved.group, given.group),
            chosen(resolved.batch, given.batch), by]


def _other_matrix_warning(roles: RoleFlags, model: Model) -> str | None:
    """A warning when --layer or --raw chooses another matrix of an .h5ad file than the model was trained
    on: counts where it learned log-normalised values (or the reverse) are on another scale, and every
    prediction is off while nothing fails."""
    trained = trained_matrix(model)
    if trained is None or (roles.layer is None and not roles.raw):
        return None  # the defaults read the training matrix
    if roles.raw:
        chosen, option = ".raw.X", "--raw"
    elif roles.layer == data.h5ad.X_LAYER:
        chosen, option = ".X", f"--layer {roles.layer}"
    else:
        chosen, option = f"layer {roles.layer!r}", f"--layer {roles.layer}"
    if chosen == trained:
        return None
    return (f"features from {chosen} ({option}), but the model was trained on {trained}: values on another scale "
            "(raw counts where it learned log-normalised ones, or the reverse) give wrong predictions without an "
            f"error; leave out {option} to read {trained} as in training (unless this file keeps those values in "
            f"{chosen})")


def _both_counts_note(roles: RoleFlags, model: Model, table) -> str | None:
    """A note in place of ``_other_matrix_warning`` when the matrix chosen by --layer / --raw holds raw counts (whole
    numbers) and the model records that its training cells did too (``provenance["counts"]``): the two are on one
    scale, as a reference's counts layer and a query's .X or .raw.X of counts are, and "values on another scale"
    would not apply (it was said on every such prediction)."""
    if (model.provenance or {}).get("counts") is not True or not table.h.counts_like()[0]:
        return None
    option = "--raw" if roles.raw else f"--layer {roles.layer}"
    return (f"features from {table.h.matrix_name} ({option}), not {trained_matrix(model)} as in training: both hold "
            "raw counts (whole numbers), the kind of values the model learned")


def _tenx_matrix_warning(model: Model) -> str | None:
    """A warning when a 10x directory (raw counts) meets a model trained on an .h5ad file's .X without log1p:
    .X then held values that did not look like counts, usually log-normalised ones, on another scale than the
    counts (as ``_other_matrix_warning`` says of a layer chosen against the training .X). A model that applies
    log1p learned counts-like values from .X, as the 10x matrix holds: no warning."""
    if trained_matrix(model) != ".X" or getattr(getattr(model.preprocessor, "config", None), "log1p", False):
        return None
    return ("features from the 10x matrix (its raw counts), but the model was trained on .X of an .h5ad file "
            "without log1p, values that did not look like counts (usually log-normalised ones): values on another "
            "scale give wrong predictions without an error; normalise the counts as that .X was (e.g. scanpy's "
            "normalize_total and log1p) into an .h5ad file and predict that")


def _tenx_trained_warning(model: Model, table) -> str | None:  # (models without provenance.counts: see below)
    """A warning when a model trained on a 10x directory (raw counts) reads an .h5ad file's .X whose values are
    not counts, as scanpy's files keep log-normalised values there: every prediction is off while nothing fails
    (log-normalised cells given to such a model: balanced accuracy 0.853 against 0.963 from the file's counts
    layer). The file's matrices are named, for --layer or --raw."""
    if (model.provenance or {}).get("data_kind") != "10x":
        return None
    counts, example = table.h.counts_like()
    if counts:
        return None
    return (f"features from .X, whose values are not counts ({example:.4g}), but the model was trained on the raw "
            f"counts of a 10x directory ({model.provenance.get('data_file')}): values on another scale give wrong "
            f"predictions without an error; choose this file's counts with --layer NAME or --raw (its matrices: "
            f"{table.h.matrices()})")


def _counts_kind_warning(model: Model, table) -> str | None:
    """A warning when the matrix read holds the other kind of values than the model's training cells did (the
    model's ``provenance["counts"]``): raw counts where it learned log-normalised values, or the reverse — a
    counts layer holding a copy of .X, an .X of counts. Predictions on another scale are wrong without an error
    (a counts model given log-normalised cells: accuracy 0.938 -> 0.885, and the shift check saw nothing). Model
    files written before the record fall back on ``_tenx_trained_warning``, which tells a 10x model's counts alone."""
    trained = (model.provenance or {}).get("counts")
    if trained is None:
        return None
    counts, example = table.h.counts_like()
    if counts == trained:
        return None
    read = table.h.matrix_name
    if trained:
        return (f"features from {read}, whose values are not counts ({example:.4g}), but the model was trained on raw "
                f"counts: values on another scale give wrong predictions without an error; choose this file's counts "
                f"with --layer NAME or --raw (its matrices: {table.h.matrices()})")
    return (f"features from {read}, whose values are whole numbers (raw counts?), but the model was trained on values "
            "that were not counts (log-normalised?): values on another scale give wrong predictions without an "
            f"error; normalise them as the training cells were, or choose another matrix (its matrices: "
            f"{table.h.matrices()})")


def open_h5ad(source, roles: RoleFlags, model: Model):
    """(the opened .h5ad table, the roles with this file's defaults, notes, warnings). The matrix and the gene
    names default to the model's training choices (--layer, --raw, --var-names given to train), the id to
    obs_names; another matrix than the training one is a warning (``_other_matrix_warning``); a
    gene-identifier mismatch with the model is a DataError that names the option fixing it."""
    if roles.features_in_rows and data.h5ad.is_h5ad(source):
        raise OptionError("--features-in-rows: an .h5ad file is cells x genes by definition; leave it out")
    trained = model.config or {}
    layer, raw, var_names, notes = roles.layer, roles.raw, roles.var_names, []
    warning = _other_matrix_warning(roles, model) if data.h5ad.is_h5ad(source) else None
    from_model = None
    if layer is None and not raw and (trained.get("layer") or trained.get("raw")):
        trained_on = f"layer {trained['layer']!r}" if trained.get("layer") else ".raw.X"
        if data.h5ad.is_h5ad(source):
            layer, raw, from_model = trained.get("layer"), bool(trained.get("raw")), trained_on
            notes.append(f"features from {from_model}, as in training (--layer X for .X, --layer NAME for another)")
        else:  # a 10x directory has one matrix, its counts, and no layers to choose from
            notes.append(f"features from the 10x matrix (its counts); the model was trained on {trained_on} of an "
                         ".h5ad file, which should hold the same kind of values")
    elif data.tenx.is_tenx(source):
        warning = _tenx_matrix_warning(model)
    fallback = var_names is None and bool(trained.get("var_names"))
    if fallback:
        var_names = trained["var_names"]
    try:
        table = open_table(source, layer=layer, raw=raw, var_names=var_names, var_names_fallback=fallback,
                           sep=roles.sep, decimal=roles.decimal,  # (refused here: they read text tables)
                           needed=frozenset(model.preprocessor.kept_features))
    except DataError as exc:
        if from_model is None or not ("--layer" in str(exc) or "--raw" in str(exc)):  # not the matrix's fault
            raise
        raise DataError(f"{exc} (the model was trained on {from_model}: pass --layer NAME, or --layer X for .X)") \
            from None
    try:
        table.check_features(model.preprocessor.kept_features, roles.var_names)
        if warning is not None and data.h5ad.is_h5ad(source) and (note := _both_counts_note(roles, model, table)):
            warning = None
            notes.append(note)
        if warning is None and from_model is None and layer is None and not raw and data.h5ad.is_h5ad(source):
            warning = _tenx_trained_warning(model, table)
        if warning is None and data.h5ad.is_h5ad(source):
            warning = _counts_kind_warning(model, table)
    except BaseException:
        table.close()
        raise
    if roles.id is None:
        roles = dataclasses.replace(roles, id=table.default_id)
    return table, dataclasses.replace(roles, layer=None, raw=False, var_names=None), notes, [warning] if warning else []


def role_names(model: Model, roles: RoleFlags | None) -> list[str]:
    """Every column that may hold ids, groups, batches or labels (the options', the model's, the usual
    names): read as written by a whole-table read."""
    given = roles or RoleFlags()
    model_roles = model.roles or {}
    names = [given.id, given.group, given.batch, *listed_names(given.target), model_roles.get("id"), model_roles.get("group"),
             model_roles.get("batch"), *(model_roles.get("target") or model.target_names or []),
             data.DEFAULT_ID, *data.DEFAULT_GROUPS, data.DEFAULT_BATCH, data.DEFAULT_TARGET]
    return [str(n) for n in dict.fromkeys(names) if n]


def number_key(name: str) -> str:
    """A batch name as a number reads it ("1.0" and "1" -> "1"), for matching a cohort's batches with training's;
    other names as they are."""
    try:
        value = float(name)
    except (TypeError, ValueError):
        return name
    return str(int(value)) if value.is_integer() and abs(value) < 2 ** 53 else repr(value)
