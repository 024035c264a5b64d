# xasnmf: the whole analysis of Tanimoto et al. (2020) as one DAG per dataset.
#
#   snakemake --cores all                       # default config: synthetic paper data + real STXM stack
#   snakemake --cores all --configfile my.yaml  # your own datasets (see config/config.yaml)
#   snakemake --report results/report.html      # figures and tables with captions
#
# The logic lives in the xasnmf library (src/xasnmf); rules and scripts only connect files.

from snakemake.utils import min_version, validate

min_version("8.20")


# The default config, unless a --configfile is given (which then replaces it instead of
# being merged into it, so `--configfile tests/smoke/config.yaml` runs only the smoke datasets).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, "config/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/bcv.smk"
include: "workflow/rules/factorize.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        all_outputs,
    default_target: True
