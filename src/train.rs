//! `ramtid train`: the command line's training settings, turned into checked parameters by
//! the same check as `TrainModel` and the service configuration use.

use ramtid_core::params::{CheckedFitParams, FitParams, Method, ParamError, ParamGuard};

/// The settings `ramtid train` takes as flags; unset ones keep [`FitParams`]' defaults.
#[derive(Debug, Clone, Default)]
pub struct TrainFlags {
    pub efficiency: Option<Method>,
    pub reference_quantile: Option<f64>,
    pub tolerance: Option<f64>,
    pub implausible_gap: Option<f64>,
    pub weekend_apart: Option<bool>,
    pub team_slack: Option<bool>,
    pub folds: Option<usize>,
    pub lambdas: Option<Vec<f64>>,
    pub seed: Option<u64>,
    pub threads: Option<usize>,
    pub min_visit_min: Option<f64>,
    pub max_visit_min: Option<f64>,
}

/// The flags as checked parameters, or the first setting that breaks a rule.
pub fn fit_params(f: &TrainFlags) -> Result<CheckedFitParams, ParamError> {
    let mut p = FitParams::new();
    if f.efficiency == Some(Method::TeamReference) {
        p = p.reference_quantile(0.5);
    }
    if let Some(q) = f.reference_quantile {
        p = p.reference_quantile(q);
    }
    if let Some(g) = f.implausible_gap {
        p = p.implausible_gap(g);
    }
    if let Some(t) = f.tolerance {
        p = p.tolerance(t);
    }
    if let Some(w) = f.weekend_apart {
        p = p.weekend_apart(w);
    }
    if let Some(t) = f.team_slack {
        p = p.team_slack(t);
    }
    // After the other methods' values: `--efficiency pooled` wins over them.
    if f.efficiency == Some(Method::Pooled) {
        p = p.pooled();
    }
    if let Some(k) = f.folds {
        p = p.folds(k);
    }
    if let Some(l) = &f.lambdas {
        p = p.lambdas(l.clone());
    }
    if let Some(s) = f.seed {
        p = p.seed(s);
    }
    if let Some(t) = f.threads {
        p = p.threads(t);
    }
    if let Some(m) = f.min_visit_min {
        p = p.min_visit_min(m);
    }
    if let Some(m) = f.max_visit_min {
        p = p.max_visit_min(m);
    }
    p.check()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_flags_are_the_defaults_and_pooled_wins() {
        assert_eq!(
            fit_params(&TrainFlags::default()).unwrap(),
            FitParams::default().check().unwrap()
        );
        let p = fit_params(&TrainFlags {
            efficiency: Some(Method::Pooled),
            reference_quantile: Some(0.3),
            ..TrainFlags::default()
        })
        .unwrap();
        assert_eq!(
            p.settings().efficiency,
            ramtid_core::fit::Efficiency::Pooled
        );
    }
}
