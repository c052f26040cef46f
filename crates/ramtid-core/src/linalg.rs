//! The small amount of dense linear algebra the fit needs: a ridge system solved by
//! Cholesky (linfa-linalg), reused for many right-hand sides.

use linfa_linalg::cholesky::Cholesky;
use ndarray::{Array1, Array2};

#[derive(Debug, thiserror::Error)]
#[error("the normal equations are not positive definite ({0}); raise the penalty")]
pub struct NotPositiveDefinite(String);

/// A factorized symmetric positive definite matrix `A = L Lᵀ`.
pub struct Factor {
    l: Array2<f64>,
}

impl Factor {
    pub fn new(a: &Array2<f64>) -> Result<Factor, NotPositiveDefinite> {
        let l = a
            .cholesky()
            .map_err(|e| NotPositiveDefinite(e.to_string()))?;
        Ok(Factor { l })
    }

    /// Solves `A x = b`.
    pub fn solve(&self, b: &Array1<f64>) -> Array1<f64> {
        let n = b.len();
        let l = &self.l;
        let mut y = b.clone();
        for i in 0..n {
            let mut s = y[i];
            let row = l.row(i);
            for k in 0..i {
                s -= row[k] * y[k];
            }
            y[i] = s / row[i];
        }
        for i in (0..n).rev() {
            let mut s = y[i];
            for k in i + 1..n {
                s -= l[[k, i]] * y[k];
            }
            y[i] = s / l[[i, i]];
        }
        y
    }
}

/// `xᵀ A x` for symmetric `A`.
pub fn quad_form(a: &Array2<f64>, x: &Array1<f64>) -> f64 {
    x.dot(&a.dot(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn solves_a_small_system() {
        let a = array![[4.0, 2.0, 0.6], [2.0, 5.0, 1.0], [0.6, 1.0, 3.0]];
        let x = array![1.0, -2.0, 0.5];
        let b = a.dot(&x);
        let f = Factor::new(&a).unwrap();
        let got = f.solve(&b);
        for i in 0..3 {
            assert!((got[i] - x[i]).abs() < 1e-12);
        }
        assert!((quad_form(&a, &x) - x.dot(&b)).abs() < 1e-12);
        assert!(Factor::new(&array![[1.0, 2.0], [2.0, 1.0]]).is_err());
    }
}
