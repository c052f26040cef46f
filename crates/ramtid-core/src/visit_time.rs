//! The visit-time model as a linfa model, so that a data team can use it where linfa models
//! go: fit it on a [`linfa::DatasetBase`] of visit feature rows (records) and logged
//! minutes (targets), and predict the efficient minutes of visits. Fitting runs the same
//! [`crate::fit::fit`] as `ramtid train`, on a [`VisitTable`] made from the rows; predicting
//! runs the same per-visit prediction as estimation ([`crate::estimate::predict_visit`]).
//!
//! A row's columns ([`VisitColumns`]) are fixed by the catalog: recipient (an integer id:
//! cross-validation folds are grouped by it), team (an integer id), check-in hour, staff
//! (1 or 2), one 0/1 column per catalog insats, then one column per context variable in the
//! catalog's values (booleans 0/1, categorical labels by index). Rows are fitted as given:
//! the cleaning rules belong to reading a log ([`crate::visits`]), and
//! [`VisitColumns::dataset`] turns a read log into rows.
//!
//! ```
//! use linfa::prelude::*;
//! use ndarray::{Array1, Array2};
//! use ramtid_core::catalog::Catalog;
//! use ramtid_core::params::FitParams;
//! use ramtid_core::visit_time::{VisitColumns, VisitTimeModel};
//!
//! let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
//!     .join("../../models/nordstad/1/catalog.toml");
//! let catalog = Catalog::load(&path)?;
//! let cols = VisitColumns::of(&catalog);
//! let morning = catalog.code_index()["MORNING_CARE"];
//! let shower = catalog.code_index()["SHOWER"];
//!
//! // 3 000 visits by 300 recipients in four teams; teams 2 and 3 take 30% longer.
//! let n = 3000;
//! let mut x = Array2::<f64>::zeros((n, cols.width()));
//! let mut y = Array1::<f64>::zeros(n);
//! for i in 0..n {
//!     let (recipient, team) = (i % 300, i % 4);
//!     x[[i, VisitColumns::RECIPIENT]] = recipient as f64;
//!     x[[i, VisitColumns::TEAM]] = team as f64;
//!     x[[i, VisitColumns::HOUR]] = 7.0;
//!     x[[i, VisitColumns::STAFF]] = 1.0;
//!     x[[i, cols.task(morning)]] = 1.0;
//!     let showers = i % 3 == 0;
//!     if showers {
//!         x[[i, cols.task(shower)]] = 1.0;
//!     }
//!     for (v, var) in catalog.contexts.iter().enumerate() {
//!         // Each variable's smallest allowed value: the context does not vary here.
//!         x[[i, cols.context(v)]] = var.ordinal_levels.first().copied()
//!             .or(var.min).unwrap_or(0.0);
//!     }
//!     let efficient = 18.0 + if showers { 30.0 } else { 0.0 };
//!     let noise = 1.0 + 0.1 * (((i * 7919) % 101) as f64 / 100.0 - 0.5);
//!     y[i] = efficient * noise * if team >= 2 { 1.3 } else { 1.0 };
//! }
//! let data = Dataset::new(x, y);
//!
//! let model: VisitTimeModel = VisitTimeModel::params(catalog)
//!     .fit_params(FitParams::new().folds(3).reference_quantile(0.5))
//!     .fit(&data)?;
//! let efficient: Array1<f64> = model.predict(data.records());
//! // At the level of the fast teams, not of all logged time.
//! let (plain, with_shower) = (efficient[1], efficient[0]);
//! assert!((plain - 18.0).abs() < 1.5, "{plain}");
//! assert!((with_shower - 48.0).abs() < 3.0, "{with_shower}");
//! assert!(model.report().logged_over_efficient > 1.1);
//!
//! // Bad settings are refused by the same check as everywhere, naming the setting.
//! let e = VisitTimeModel::params(model.catalog().clone())
//!     .fit_params(FitParams::new().folds(1))
//!     .fit(&data)
//!     .unwrap_err();
//! assert_eq!(e.to_string(), "folds: 1 folds; expected 2 to 20");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::catalog::{Catalog, ContextKind};
use crate::estimate::{predict_visit, Scratch};
use crate::fit::{fit, FitError, FitReport, VisitModel};
use crate::params::{validate, CheckedFitParams, FitParams, ParamError, ParamGuard};
use crate::progress::NoProgress;
use crate::slot::Slot;
use crate::visits::VisitTable;
use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::{Fit, PredictInplace};
use linfa::Dataset;
use ndarray::{Array1, Array2, ArrayBase, ArrayView1, ArrayView2, Data, Ix2};

/// Why visit rows could not be fitted or predicted.
#[derive(Debug, thiserror::Error)]
pub enum VisitTimeError {
    #[error(transparent)]
    Params(#[from] ParamError),
    #[error(transparent)]
    Fit(#[from] FitError),
    /// A row's value does not fit its column.
    #[error("row {row}, column '{column}': {message}")]
    Row {
        /// 0-based, as in the records array.
        row: usize,
        column: String,
        message: String,
    },
    #[error("the records have {found} columns; this catalog's visit rows have {expected}")]
    Width { found: usize, expected: usize },
    #[error("{records} records but {targets} targets")]
    Length { records: usize, targets: usize },
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}

/// The column layout of visit feature rows for one catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitColumns {
    tasks: usize,
    context: usize,
}

impl VisitColumns {
    /// Recipient id, an integer from 0 to 2³²−1; folds are grouped by it.
    pub const RECIPIENT: usize = 0;
    /// Team id, an integer from 0 to 65 535; team levels are estimated per id.
    pub const TEAM: usize = 1;
    /// Check-in hour, 0 to 23 (fractions are cut): it sets the time-of-day slot.
    pub const HOUR: usize = 2;
    /// Staff count, 1 or 2.
    pub const STAFF: usize = 3;
    const FIXED: usize = 4;

    pub fn of(catalog: &Catalog) -> VisitColumns {
        VisitColumns {
            tasks: catalog.insatser.len(),
            context: catalog.contexts.len(),
        }
    }

    /// The 0/1 column of catalog insats `t` (its index in `catalog.insatser`).
    pub fn task(&self, t: usize) -> usize {
        Self::FIXED + t
    }

    /// The column of catalog context variable `v`.
    pub fn context(&self, v: usize) -> usize {
        Self::FIXED + self.tasks + v
    }

    /// Columns in a row.
    pub fn width(&self) -> usize {
        Self::FIXED + self.tasks + self.context
    }

    /// Column names: recipient, team, hour, staff, `task:<code>`, then the context
    /// variables' log columns (`ctx_<name>`).
    pub fn names(&self, catalog: &Catalog) -> Vec<String> {
        ["recipient", "team", "hour", "staff"]
            .iter()
            .map(|s| s.to_string())
            .chain(catalog.insatser.iter().map(|i| format!("task:{}", i.code)))
            .chain(catalog.contexts.iter().map(|c| c.column()))
            .collect()
    }

    /// A read visit log as a linfa dataset: its rows (the hour is the slot's typical one)
    /// and logged minutes as targets, with the column names as feature names.
    pub fn dataset(
        &self,
        table: &VisitTable,
        catalog: &Catalog,
    ) -> Dataset<f64, f64, ndarray::Ix1> {
        let mut x = Array2::zeros((table.len(), self.width()));
        let mut y = Array1::zeros(table.len());
        for (i, row) in table.iter().enumerate() {
            x[[i, Self::RECIPIENT]] = f64::from(row.recipient);
            x[[i, Self::TEAM]] = f64::from(row.unit);
            x[[i, Self::HOUR]] = f64::from(row.slot.typical_hour());
            x[[i, Self::STAFF]] = f64::from(row.staff);
            for &t in row.tasks {
                x[[i, self.task(t as usize)]] = 1.0;
            }
            for (v, &value) in row.context.iter().enumerate() {
                x[[i, self.context(v)]] = f64::from(value);
            }
            y[i] = row.duration;
        }
        Dataset::new(x, y).with_feature_names(self.names(catalog))
    }

    /// One row's parts: recipient, team, slot and staff; tasks and context into the buffers.
    fn parse(
        &self,
        catalog: &Catalog,
        row: usize,
        x: ArrayView1<'_, f64>,
        tasks: &mut Vec<u16>,
        context: &mut [f64],
    ) -> Result<(u32, u32, Slot, u8), VisitTimeError> {
        let bad = |column: String, message: String| VisitTimeError::Row {
            row,
            column,
            message,
        };
        let int = |col: usize, name: &str, max: f64| -> Result<f64, VisitTimeError> {
            let v = x[col];
            if v.fract() == 0.0 && (0.0..=max).contains(&v) {
                Ok(v)
            } else {
                Err(bad(
                    name.to_string(),
                    format!("{v} is not an integer id from 0 to {max}"),
                ))
            }
        };
        let recipient = int(Self::RECIPIENT, "recipient", f64::from(u32::MAX))? as u32;
        let team = int(Self::TEAM, "team", f64::from(u16::MAX))? as u32;
        let hour = x[Self::HOUR];
        if !(0.0..24.0).contains(&hour) {
            return Err(bad("hour".into(), format!("{hour} is not an hour 0 to 23")));
        }
        let staff = match x[Self::STAFF] {
            1.0 => 1,
            2.0 => 2,
            other => {
                return Err(bad(
                    "staff".into(),
                    format!("{other} is not a staff count; expected 1 or 2"),
                ))
            }
        };
        tasks.clear();
        for (t, insats) in catalog.insatser.iter().enumerate() {
            match x[self.task(t)] {
                0.0 => {}
                1.0 => tasks.push(t as u16),
                other => {
                    return Err(bad(
                        format!("task:{}", insats.code),
                        format!("{other} is not 0 or 1"),
                    ))
                }
            }
        }
        if tasks.is_empty() {
            return Err(bad("(tasks)".into(), "the visit has no insats".into()));
        }
        for (v, var) in catalog.contexts.iter().enumerate() {
            let value = x[self.context(v)];
            context[v] = match var.kind {
                ContextKind::Categorical
                    if value.fract() == 0.0 && value >= 0.0 && value < var.labels.len() as f64 =>
                {
                    value
                }
                ContextKind::Categorical => {
                    return Err(bad(
                        var.column(),
                        format!(
                            "{value} is not a label index; expected 0 to {}",
                            var.labels.len().saturating_sub(1)
                        ),
                    ))
                }
                _ => var
                    .check_number(value)
                    .map_err(|message| bad(var.column(), message))?,
            };
        }
        Ok((recipient, team, Slot::from_hour(hour as u32), staff))
    }

    /// The rows (and logged minutes) as the table the fit works on, with team names.
    fn table(
        &self,
        catalog: &Catalog,
        records: ArrayView2<'_, f64>,
        minutes: ArrayView1<'_, f64>,
    ) -> Result<(VisitTable, Vec<String>), VisitTimeError> {
        self.check_width(records.ncols())?;
        if records.nrows() != minutes.len() {
            return Err(VisitTimeError::Length {
                records: records.nrows(),
                targets: minutes.len(),
            });
        }
        let mut table = VisitTable::new(catalog.contexts.len());
        let mut tasks = Vec::new();
        let mut context = vec![0.0; catalog.contexts.len()];
        let mut teams = 0;
        for (i, (x, &y)) in records.outer_iter().zip(minutes).enumerate() {
            let (recipient, team, slot, staff) =
                self.parse(catalog, i, x, &mut tasks, &mut context)?;
            if !(y.is_finite() && y >= 0.0) {
                return Err(VisitTimeError::Row {
                    row: i,
                    column: "(target)".into(),
                    message: format!("{y} is not a duration; expected minutes >= 0"),
                });
            }
            teams = teams.max(team + 1);
            table.push(recipient, team, 0, slot, staff, y, &tasks, &context);
        }
        let units = (0..teams).map(|t| t.to_string()).collect();
        Ok((table, units))
    }

    fn check_width(&self, found: usize) -> Result<(), VisitTimeError> {
        if found == self.width() {
            Ok(())
        } else {
            Err(VisitTimeError::Width {
                found,
                expected: self.width(),
            })
        }
    }
}

/// The checked parameters of a [`VisitTimeModel`]: the catalog that fixes the columns and
/// the fit settings.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitTimeValidParams {
    catalog: Catalog,
    params: CheckedFitParams,
}

impl VisitTimeValidParams {
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn fit_params(&self) -> &CheckedFitParams {
        &self.params
    }
}

/// The unchecked parameters of a [`VisitTimeModel`] (linfa's [`ParamGuard`]): checked by
/// [`crate::params`]' rules when fitted.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitTimeParams(VisitTimeValidParams);

impl VisitTimeParams {
    /// The defaults for `catalog`'s visit rows.
    pub fn new(catalog: Catalog) -> VisitTimeParams {
        VisitTimeParams(VisitTimeValidParams {
            catalog,
            params: FitParams::default().0,
        })
    }

    /// The fit settings (checked when fitting).
    pub fn fit_params(mut self, params: FitParams) -> VisitTimeParams {
        self.0.params = params.0;
        self
    }
}

impl ParamGuard for VisitTimeParams {
    type Checked = VisitTimeValidParams;
    type Error = ParamError;

    fn check_ref(&self) -> Result<&VisitTimeValidParams, ParamError> {
        validate(&self.0.params)?;
        Ok(&self.0)
    }

    fn check(self) -> Result<VisitTimeValidParams, ParamError> {
        validate(&self.0.params)?;
        Ok(self.0)
    }
}

impl<D, T> Fit<ArrayBase<D, Ix2>, T, VisitTimeError> for VisitTimeValidParams
where
    D: Data<Elem = f64>,
    T: AsSingleTargets<Elem = f64>,
{
    type Object = VisitTimeModel;

    fn fit(
        &self,
        dataset: &DatasetBase<ArrayBase<D, Ix2>, T>,
    ) -> Result<VisitTimeModel, VisitTimeError> {
        let cols = VisitColumns::of(&self.catalog);
        let (table, units) = cols.table(
            &self.catalog,
            dataset.records.view(),
            dataset.targets.as_single_targets(),
        )?;
        let (visit, report) = fit(&table, &units, &self.catalog, &self.params, &NoProgress)?;
        Ok(VisitTimeModel {
            catalog: self.catalog.clone(),
            visit,
            report,
        })
    }
}

/// A fitted visit-time model: efficient minutes of visit rows.
#[derive(Debug, Clone)]
pub struct VisitTimeModel {
    catalog: Catalog,
    visit: VisitModel,
    report: FitReport,
}

impl VisitTimeModel {
    /// Parameters for `catalog`'s visit rows, with the default settings.
    pub fn params(catalog: Catalog) -> VisitTimeParams {
        VisitTimeParams::new(catalog)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The fitted coefficients and intervals, as a published model holds them.
    pub fn visit_model(&self) -> &VisitModel {
        &self.visit
    }

    /// What the fit found: penalty, cross-validation, team levels, held-out figures.
    pub fn report(&self) -> &FitReport {
        &self.report
    }

    /// Efficient minutes of each row, or the first row that is not a visit row of this
    /// catalog. ([`PredictInplace`] gives NaN for such rows instead.)
    pub fn try_predict(&self, records: ArrayView2<'_, f64>) -> Result<Array1<f64>, VisitTimeError> {
        let cols = VisitColumns::of(&self.catalog);
        cols.check_width(records.ncols())?;
        let mut out = Array1::zeros(records.nrows());
        let mut buffers = Buffers::new(&self.catalog);
        for (i, x) in records.outer_iter().enumerate() {
            out[i] = self.predict_row(&cols, i, x, &mut buffers)?;
        }
        Ok(out)
    }

    fn predict_row(
        &self,
        cols: &VisitColumns,
        i: usize,
        x: ArrayView1<'_, f64>,
        b: &mut Buffers,
    ) -> Result<f64, VisitTimeError> {
        let (_, _, slot, staff) = cols.parse(&self.catalog, i, x, &mut b.tasks, &mut b.context)?;
        Ok(predict_visit(
            &self.visit,
            &b.tasks,
            slot,
            staff,
            &b.context,
            &mut b.scratch,
        ))
    }
}

struct Buffers {
    tasks: Vec<u16>,
    context: Vec<f64>,
    scratch: Scratch,
}

impl Buffers {
    fn new(catalog: &Catalog) -> Buffers {
        Buffers {
            tasks: Vec::new(),
            context: vec![0.0; catalog.contexts.len()],
            scratch: Scratch::default(),
        }
    }
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<f64>> for VisitTimeModel {
    /// Efficient minutes of each row into `y`. A row that is not a visit row of the model's
    /// catalog (or records of the wrong width) gets NaN; [`VisitTimeModel::try_predict`]
    /// says why. Entries of `y` beyond the records are left alone.
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<f64>) {
        let cols = VisitColumns::of(&self.catalog);
        let fits = cols.check_width(x.ncols()).is_ok();
        let mut buffers = Buffers::new(&self.catalog);
        for (i, (row, out)) in x.outer_iter().zip(y.iter_mut()).enumerate() {
            *out = if fits {
                self.predict_row(&cols, i, row, &mut buffers)
                    .unwrap_or(f64::NAN)
            } else {
                f64::NAN
            };
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<f64> {
        Array1::zeros(x.nrows())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::FitParams;
    use linfa::traits::Predict;

    fn catalog() -> Catalog {
        Catalog::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../models/nordstad/1/catalog.toml"),
        )
        .unwrap()
    }

    /// A varied table: every slot, both staff counts, several tasks and contexts, six teams.
    fn table(catalog: &Catalog, n: usize) -> (VisitTable, Vec<String>) {
        let mut t = VisitTable::new(catalog.contexts.len());
        let mut next = crate::test_rng::below(0x2545_f491_4f6c_dd1du64);
        let contexts: Vec<Vec<f64>> = catalog
            .contexts
            .iter()
            .map(|c| match c.kind {
                ContextKind::Categorical => (0..c.labels.len()).map(|i| i as f64).collect(),
                ContextKind::Boolean => vec![0.0, 1.0],
                ContextKind::Ordinal => c.ordinal_levels.clone(),
                ContextKind::Numeric => {
                    let lo = c.min.unwrap_or(0.0);
                    vec![lo, lo + 10.0, lo + 20.0]
                }
            })
            .collect();
        for i in 0..n {
            let recipient = (i % 400) as u32;
            let unit = recipient % 6;
            let mut tasks: Vec<u16> = (0..1 + next(3))
                .map(|_| next(catalog.insatser.len() as u64) as u16)
                .collect();
            tasks.sort_unstable();
            tasks.dedup();
            let context: Vec<f64> = contexts
                .iter()
                .map(|v| v[(recipient as usize + v.len()) % v.len()])
                .collect();
            let schablon: f64 = tasks
                .iter()
                .map(|&k| catalog.insatser[k as usize].schablon_min)
                .sum();
            let team = 1.0 + 0.08 * f64::from(unit);
            let noise = 0.8 + 0.4 * next(1000) as f64 / 1000.0;
            t.push(
                recipient,
                unit,
                0,
                Slot::ALL[next(5) as usize],
                1 + next(2) as u8,
                schablon * team * noise,
                &tasks,
                &context,
            );
        }
        (t, (0..6).map(|u| u.to_string()).collect())
    }

    #[test]
    fn fitting_rows_is_the_fit_of_train() {
        let catalog = catalog();
        let (table, units) = table(&catalog, 4000);
        let params = FitParams::new().folds(3).threads(1);
        let (direct, report) = fit(
            &table,
            &units,
            &catalog,
            &params.clone().check().unwrap(),
            &NoProgress,
        )
        .unwrap();
        let data = VisitColumns::of(&catalog).dataset(&table, &catalog);
        let model = VisitTimeModel::params(catalog.clone())
            .fit_params(params)
            .fit(&data)
            .unwrap();
        assert_eq!(model.visit_model(), &direct);
        assert_eq!(model.report().lambda, report.lambda);
        assert_eq!(model.report().visits, 4000);

        // Predictions are estimation's per-visit predictions.
        let predicted: Array1<f64> = model.predict(data.records());
        let mut scratch = Scratch::default();
        for (i, row) in table.iter().enumerate().step_by(97) {
            let context: Vec<f64> = row.context.iter().map(|&c| f64::from(c)).collect();
            let expected = predict_visit(
                &direct,
                row.tasks,
                row.slot,
                row.staff,
                &context,
                &mut scratch,
            );
            assert_eq!(predicted[i], expected, "row {i}");
        }
        assert_eq!(model.try_predict(data.records().view()).unwrap(), predicted);
    }

    #[test]
    fn bad_rows_are_named_and_predict_nan() {
        let catalog = catalog();
        let (table, _) = table(&catalog, 600);
        let cols = VisitColumns::of(&catalog);
        let data = cols.dataset(&table, &catalog);
        let model = VisitTimeModel::params(catalog.clone())
            .fit_params(FitParams::new().folds(2))
            .fit(&data)
            .unwrap();
        let mut x = data.records().clone();
        x[[3, VisitColumns::STAFF]] = 3.0;
        x[[5, VisitColumns::HOUR]] = 24.0;
        x[[7, cols.task(0)]] = 0.5;
        let e = model.try_predict(x.view()).unwrap_err().to_string();
        assert_eq!(
            e,
            "row 3, column 'staff': 3 is not a staff count; expected 1 or 2"
        );
        let y: Array1<f64> = model.predict(&x);
        assert!(y[3].is_nan() && y[5].is_nan() && y[7].is_nan());
        assert!(y[4].is_finite() && y[4] > 0.0);
        let narrow = Array2::<f64>::zeros((2, cols.width() - 1));
        let y: Array1<f64> = model.predict(&narrow);
        assert!(y.iter().all(|v| v.is_nan()));
        assert!(matches!(
            model.try_predict(narrow.view()),
            Err(VisitTimeError::Width { .. })
        ));

        // Fitting: a bad target, a bad id, and the row is named.
        let mut bad = data.clone();
        bad.targets[9] = f64::NAN;
        let e = VisitTimeModel::params(catalog.clone())
            .fit(&bad)
            .unwrap_err();
        assert!(e.to_string().starts_with("row 9, column '(target)'"), "{e}");
        let mut bad = data.clone();
        bad.records[[2, VisitColumns::RECIPIENT]] = -1.0;
        let e = VisitTimeModel::params(catalog).fit(&bad).unwrap_err();
        assert!(
            e.to_string().starts_with("row 2, column 'recipient'"),
            "{e}"
        );
    }
}
