//! What kind of failure an error is, without naming a transport.
//!
//! Every error type of the library says once, here and in the history crate, which [`Kind`]
//! each of its variants is. The gRPC service maps a `Kind` to a status code in one place
//! (`ramtid_server::error::code_of`), so no handler re-decides what a training or storage
//! error means for the caller. The kinds follow gRPC's canonical codes by meaning, but this
//! crate depends on no gRPC crate.

use crate::catalog::CatalogError;
use crate::fit::FitError;
use crate::model::ModelError;
use crate::train::TrainError;
use crate::visits::LogError;

/// The caller's view of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The input is wrong; sending it again will fail again.
    InvalidArgument,
    /// The thing asked for does not exist.
    NotFound,
    /// The input is well formed, but the state of the data or the system does not allow the
    /// operation (too little data to fit, a schema newer than this build).
    FailedPrecondition,
    /// A size or rate limit was exceeded.
    ResourceExhausted,
    /// Another operation holds the resource; try again later.
    Aborted,
    /// The service cannot do it right now (shutting down, a store not reachable).
    Unavailable,
    /// A fault of the service itself (disk, database, a bug).
    Internal,
}

/// An error that knows its [`Kind`].
pub trait ErrorKind {
    fn kind(&self) -> Kind;
}

impl ErrorKind for CatalogError {
    fn kind(&self) -> Kind {
        // The catalog is the caller's file, whether it cannot be read or does not parse.
        Kind::InvalidArgument
    }
}

impl ErrorKind for LogError {
    fn kind(&self) -> Kind {
        match self {
            LogError::Io { .. }
            | LogError::MissingColumn { .. }
            | LogError::Header { .. }
            | LogError::Empty { .. }
            | LogError::Malformed { .. }
            | LogError::NothingUsable { .. } => Kind::InvalidArgument,
            // The rejects file is ours to write.
            LogError::Rejects { .. } => Kind::Internal,
        }
    }
}

impl ErrorKind for FitError {
    fn kind(&self) -> Kind {
        match self {
            // The data given cannot carry the model: not a malformed request, and not ours.
            FitError::TooLittleData(_) | FitError::Singular(_) => Kind::FailedPrecondition,
        }
    }
}

impl ErrorKind for ModelError {
    fn kind(&self) -> Kind {
        match self {
            ModelError::NotFound(_) => Kind::NotFound,
            ModelError::Io { .. } | ModelError::Corrupt { .. } | ModelError::Mismatch { .. } => {
                Kind::Internal
            }
        }
    }
}

impl ErrorKind for TrainError {
    fn kind(&self) -> Kind {
        match self {
            TrainError::Catalog(e) => e.kind(),
            TrainError::Log(e) => e.kind(),
            TrainError::Fit(e) => e.kind(),
            TrainError::Model(e) => e.kind(),
            // A path the data directory refuses is the caller's; one it cannot open is not.
            TrainError::Open { source, .. } => match source {
                crate::datadir::OpenError::Refused(_) => Kind::InvalidArgument,
                _ => Kind::Internal,
            },
            TrainError::Limit { .. } => Kind::InvalidArgument,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_errors_take_the_kind_of_their_cause() {
        let log = TrainError::Log(LogError::Header {
            path: "v.csv".into(),
            message: "empty".into(),
        });
        assert_eq!(log.kind(), Kind::InvalidArgument);
        let fit = TrainError::Fit(FitError::TooLittleData("3 visits".into()));
        assert_eq!(fit.kind(), Kind::FailedPrecondition);
        let model = TrainError::Model(ModelError::Corrupt {
            path: "m".into(),
            message: "x".into(),
        });
        assert_eq!(model.kind(), Kind::Internal);
    }
}
