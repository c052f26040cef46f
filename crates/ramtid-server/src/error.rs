//! The service's errors, mapped to gRPC status codes in one place.
//!
//! The library's error types say what [`Kind`] of failure each is
//! ([`ramtid_core::error::ErrorKind`]); [`code_of`] is the one map from a kind to a gRPC code,
//! and [`ErrorCode`] gives every error the service meets its code through it.

use ramtid_core::error::{ErrorKind, Kind};
use ramtid_core::needs::FieldViolation;
use ramtid_proto::pb;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input: INVALID_ARGUMENT with a `google.rpc.BadRequest` naming each field.
    #[error("invalid request: {}", join(.0))]
    Invalid(Vec<FieldViolation>),
    /// No model under that selector: NOT_FOUND.
    #[error("{0}")]
    ModelNotFound(String),
    /// No model loaded yet: UNAVAILABLE.
    #[error("no model is loaded; the service is not serving yet")]
    NoModel,
    /// The service cannot answer right now (a store shutting down): UNAVAILABLE.
    #[error("{0}")]
    Unavailable(String),
    /// A model version that was tried and refused: FAILED_PRECONDITION.
    #[error("model {model} was refused: {reason}")]
    Refused { model: String, reason: String },
    /// A limit was exceeded: RESOURCE_EXHAUSTED.
    #[error("{0}")]
    TooLarge(String),
    /// Another operation holds the resource: ABORTED.
    #[error("{0}")]
    Busy(String),
    /// Training could not run on the data given: FAILED_PRECONDITION.
    #[error("{0}")]
    Precondition(String),
    /// No such thing (a calculation id): NOT_FOUND.
    #[error("{0}")]
    NotFound(String),
    /// The caller's role may call the method but not on this object: PERMISSION_DENIED.
    #[error("{0}")]
    Denied(String),
    /// A fault of the server: INTERNAL.
    #[error("{0}")]
    Internal(String),
}

fn join(v: &[FieldViolation]) -> String {
    v.iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> ApiError {
        ApiError::Invalid(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    pub fn code(&self) -> Code {
        match self {
            ApiError::Invalid(_) => Code::InvalidArgument,
            ApiError::ModelNotFound(_) | ApiError::NotFound(_) => Code::NotFound,
            ApiError::Denied(_) => Code::PermissionDenied,
            ApiError::NoModel | ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Refused { .. } | ApiError::Precondition(_) => Code::FailedPrecondition,
            ApiError::TooLarge(_) => Code::ResourceExhausted,
            ApiError::Busy(_) => Code::Aborted,
            ApiError::Internal(_) => Code::Internal,
        }
    }

    /// A library error of `kind`, for the caller: `field` names the request field at fault
    /// when it is the caller's input (INVALID_ARGUMENT with a `google.rpc.BadRequest`);
    /// `message` is what the caller reads.
    pub fn of_kind(kind: Kind, field: &str, message: String) -> ApiError {
        match kind {
            Kind::InvalidArgument => ApiError::field(field, message),
            Kind::NotFound => ApiError::NotFound(message),
            Kind::FailedPrecondition => ApiError::Precondition(message),
            Kind::ResourceExhausted => ApiError::TooLarge(message),
            Kind::Aborted => ApiError::Busy(message),
            Kind::Unavailable => ApiError::Unavailable(message),
            Kind::Internal => ApiError::Internal(message),
        }
    }
}

/// The gRPC status code of a library error's kind: the code of the [`ApiError`] that
/// [`ApiError::of_kind`] makes of it, so the kind-to-code map is written once.
pub fn code_of(kind: Kind) -> Code {
    ApiError::of_kind(kind, "", String::new()).code()
}

/// An error's gRPC status code, said once per error type.
pub trait ErrorCode {
    fn error_code(&self) -> Code;
}

impl ErrorCode for ApiError {
    fn error_code(&self) -> Code {
        self.code()
    }
}

impl ErrorCode for ramtid_history::HistoryError {
    fn error_code(&self) -> Code {
        code_of(self.kind())
    }
}

impl ErrorCode for ramtid_core::train::TrainError {
    fn error_code(&self) -> Code {
        code_of(self.kind())
    }
}

impl From<FieldViolation> for ApiError {
    fn from(v: FieldViolation) -> Self {
        ApiError::Invalid(vec![v])
    }
}

/// One `EstimateBatch` item's error, as the stream carries it.
pub fn item_error(e: &ApiError) -> pb::ItemError {
    pb::ItemError {
        code: e.code() as i32,
        message: e.to_string(),
        violations: match e {
            ApiError::Invalid(v) => v
                .iter()
                .map(|f| pb::FieldViolation {
                    field: f.field.clone(),
                    description: f.description.clone(),
                })
                .collect(),
            _ => Vec::new(),
        },
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let code = e.code();
        match &e {
            ApiError::Invalid(violations) => {
                let details = ErrorDetails::with_bad_request(
                    violations
                        .iter()
                        .map(|v| {
                            tonic_types::FieldViolation::new(v.field.clone(), v.description.clone())
                        })
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(code, e.to_string(), details)
            }
            _ => Status::new(code, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramtid_history::HistoryError;

    #[test]
    fn kinds_map_to_their_namesake_codes() {
        for (kind, code) in [
            (Kind::InvalidArgument, Code::InvalidArgument),
            (Kind::NotFound, Code::NotFound),
            (Kind::FailedPrecondition, Code::FailedPrecondition),
            (Kind::ResourceExhausted, Code::ResourceExhausted),
            (Kind::Aborted, Code::Aborted),
            (Kind::Unavailable, Code::Unavailable),
            (Kind::Internal, Code::Internal),
        ] {
            assert_eq!(code_of(kind), code, "{kind:?}");
        }
    }

    #[test]
    fn history_errors_carry_their_code() {
        assert_eq!(
            HistoryError::BadPageToken("x".into()).error_code(),
            Code::InvalidArgument
        );
        assert_eq!(HistoryError::Closed.error_code(), Code::Internal);
        // The caller's field is named only for the caller's input.
        let e = ApiError::of_kind(Kind::InvalidArgument, "page_token", "bad".into());
        assert!(matches!(&e, ApiError::Invalid(v) if v[0].field == "page_token"));
    }
}
