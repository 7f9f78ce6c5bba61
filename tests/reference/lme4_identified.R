# lme4 reference fits for designs with a variance component the design cannot identify, and for the demo
# districts' study models (fit as identified).
#
# Run from the project root after `python tests/reference/export_frames.py`:
#     Rscript tests/reference/lme4_identified.R
# Reads tests/reference/specs.json and tests/reference/frames/*.csv.gz; writes
# tests/reference/lme4_identified.json. Needs R with lme4 and jsonlite.
#
# For every model the script decides independently of the Python package which random-intercept levels the
# design identifies (exact rank checks with base R's qr()):
#   * a level with fewer than two groups is not identified;
#   * a level whose indicator matrix Z adds no rank to the fixed effects X (rank([X Z]) == rank(X)) is not
#     identified: the REML criterion is flat in its variance;
#   * a level that is the same partition as a kept outer level is not identified separately.
# It then fits the identified model with lmer (REML) and, where a level was dropped and the full model can be
# set up, evaluates the full model's REML criterion along the dropped level's relative SD (the others held at
# the identified optimum) to show the flatness.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

here <- "tests/reference"
specs <- fromJSON(file.path(here, "specs.json"), simplifyVector = FALSE)

r_formula <- function(f) gsub("C\\(grade\\)", "factor(grade)", f)

level_factor <- function(d, groups, k) {
  # nested: an inner id is unique only within its outer groups
  interaction(d[groups[seq_len(k)]], drop = TRUE, lex.order = TRUE)
}

identify <- function(d, fixed, groups) {
  X <- model.matrix(as.formula(fixed), d)
  rx <- qr(X, tol = 1e-10)$rank
  out <- list()
  nlev <- integer(0)
  for (k in seq_along(groups)) {
    f <- level_factor(d, groups, k)
    g <- nlevels(f)
    nlev[k] <- g
    reason <- ""
    if (g < 2) {
      reason <- "one group"
    } else {
      Z <- model.matrix(~ 0 + f)
      if (qr(cbind(X, Z), tol = 1e-10)$rank == rx) {
        reason <- "collinear with fixed effects"
      } else {
        for (o in seq_len(k - 1)) {
          if (nlev[o] == g && out[[o]]$identified) {
            reason <- "same partition as an outer level"
            break
          }
        }
      }
    }
    out[[k]] <- list(level = groups[k], n_groups = g, identified = reason == "", reason = reason)
  }
  out
}

re_term <- function(groups, k) {
  paste0("(1 | ", paste(groups[seq_len(k)], collapse = ":"), ")")
}

results <- list()
for (s in specs) {
  d <- read.csv(file.path(here, "frames", s$frame), stringsAsFactors = FALSE)
  groups <- unlist(s$groups)
  for (g in groups) d[[g]] <- as.character(d[[g]])
  d <- d[complete.cases(d[unlist(s$complete)]), ]
  fixed <- r_formula(s$formula)
  ident <- identify(d, fixed, groups)
  keep <- which(vapply(ident, function(x) x$identified, logical(1)))
  form <- as.formula(paste(fixed, "+", paste(vapply(keep, function(k) re_term(groups, k), ""), collapse = " + ")))
  m <- lmer(form, data = d, REML = TRUE, control = lmerControl(calc.derivs = TRUE))
  vc <- as.data.frame(VarCorr(m))
  fe <- fixef(m)
  se <- sqrt(diag(as.matrix(vcov(m))))
  res <- list(id = s$id, formula = paste(deparse(form, width.cutoff = 500), collapse = ""), nobs = nobs(m),
              identification = ident, fixef = as.list(fe), se = as.list(setNames(se, names(fe))),
              varcomp = lapply(seq_len(nrow(vc)), function(i) list(group = vc$grp[i], vcov = vc$vcov[i])),
              REMLcrit = REMLcrit(m), theta = as.list(getME(m, "theta")), singular = isSingular(m),
              conv_messages = as.list(m@optinfo$conv$lme4$messages))
  dropped <- setdiff(seq_along(groups), keep)
  if (length(dropped) && all(vapply(ident, function(x) x$n_groups, 1) >= 2)) {
    full <- as.formula(paste(fixed, "+", paste(vapply(seq_along(groups), function(k) re_term(groups, k), ""),
                                                 collapse = " + ")))
    dev <- lmer(full, data = d, REML = TRUE, devFunOnly = TRUE)
    tn <- names(getME(lmer(full, data = d, REML = TRUE, control = lmerControl(optimizer = NULL)), "theta"))
    kept_names <- vapply(keep, function(k) paste0(paste(groups[seq_len(k)], collapse = ":"), ".(Intercept)"), "")
    th0 <- setNames(rep(0, length(tn)), tn)
    th0[kept_names] <- getME(m, "theta")
    prof <- list()
    for (k in dropped) {
      nm <- paste0(paste(groups[seq_len(k)], collapse = ":"), ".(Intercept)")
      for (v in c(0, 0.5, 1, 10, 100, 1000)) {
        th <- th0
        th[nm] <- v
        prof[[length(prof) + 1]] <- list(level = groups[k], theta = v, REMLcrit = dev(unname(th)))
      }
    }
    res$full_model_profile <- prof
  }
  results[[length(results) + 1]] <- res
}

out <- list(
  generated_with = list(R = R.version.string, packages = list(lme4 = as.character(packageVersion("lme4")),
                                                              Matrix = as.character(packageVersion("Matrix")))),
  script = "tests/reference/lme4_identified.R",
  results = results
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(here, "lme4_identified.json"))
cat("wrote", length(results), "fits to", file.path(here, "lme4_identified.json"), "\n")
