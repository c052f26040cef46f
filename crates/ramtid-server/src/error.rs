//! The service's errors, mapped to gRPC status codes in one place.
//!
//! The library's error types say what [`Kind`] of failure each is
//! ([`ramtid_core::error::ErrorKind`]); [`code_of`] is the one map from a kind to a gRPC code,
//! and [`ErrorCode`] gives every error the service meets its code through it.

use ramtid_core::error::{ErrorKind, Kind};
use ramtid_core::needs::FieldViolation;
use ramtid_proto::pb;
use std::borrow::Cow;
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
    /// The audit log cannot take the action's record, so the action is not carried out:
    /// UNAVAILABLE (the log fails closed).
    #[error("the audit log {path} cannot be written ({reason}); the action was not carried out")]
    AuditUnavailable { path: String, reason: String },
    /// A fault of the server: INTERNAL.
    #[error("{0}")]
    Internal(String),
}

/// Characters of one echoed value (an id, a code, a model name, a path) that an error text
/// quotes; the rest is replaced by an ellipsis.
pub const ECHO_CHARS: usize = 64;

/// Longest status message sent (characters). The message travels in the `grpc-message`
/// trailer: an unbounded one makes clients refuse the answer (RESOURCE_EXHAUSTED) instead of
/// reading the error.
pub const MAX_MESSAGE_CHARS: usize = 1024;

/// Longest field path or description in a `google.rpc.BadRequest` (characters).
const MAX_DETAIL_CHARS: usize = 256;

/// Most field violations sent in one `google.rpc.BadRequest`; the rest are counted.
const MAX_VIOLATIONS: usize = 100;

/// A value from a request, cut to [`ECHO_CHARS`] characters (with an ellipsis) so that an
/// error never echoes unbounded input. Cuts at a character boundary.
pub fn truncate_for_message(s: &str) -> Cow<'_, str> {
    truncate_chars(s, ECHO_CHARS)
}

/// A field path or description as sent in a `BadRequest` (or a batch item's error).
pub fn bounded_detail(s: &str) -> Cow<'_, str> {
    truncate_chars(s, MAX_DETAIL_CHARS)
}

fn truncate_chars(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some((at, _)) => Cow::Owned(format!("{}…", &s[..at])),
    }
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

    /// The error's text, bounded to [`MAX_MESSAGE_CHARS`].
    pub fn message(&self) -> String {
        truncate_chars(&self.to_string(), MAX_MESSAGE_CHARS).into_owned()
    }

    pub fn code(&self) -> Code {
        match self {
            ApiError::Invalid(_) => Code::InvalidArgument,
            ApiError::ModelNotFound(_) | ApiError::NotFound(_) => Code::NotFound,
            ApiError::Denied(_) => Code::PermissionDenied,
            ApiError::NoModel | ApiError::Unavailable(_) | ApiError::AuditUnavailable { .. } => {
                Code::Unavailable
            }
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
/// Bounded as a status is (see [`ECHO_CHARS`] and below).
pub fn item_error(e: &ApiError) -> pb::ItemError {
    pb::ItemError {
        code: e.code() as i32,
        message: e.message(),
        violations: match e {
            ApiError::Invalid(v) => v
                .iter()
                .take(MAX_VIOLATIONS)
                .map(|f| pb::FieldViolation {
                    field: bounded_detail(&f.field).into_owned(),
                    description: bounded_detail(&f.description).into_owned(),
                })
                .collect(),
            _ => Vec::new(),
        },
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let code = e.code();
        // Every text is bounded here, whatever each error site did: the last line of defence
        // against echoing a megabyte of input back in a trailer.
        let message = e.message();
        match &e {
            ApiError::Invalid(violations) => {
                let mut list: Vec<tonic_types::FieldViolation> = violations
                    .iter()
                    .take(MAX_VIOLATIONS)
                    .map(|v| {
                        tonic_types::FieldViolation::new(
                            bounded_detail(&v.field),
                            bounded_detail(&v.description),
                        )
                    })
                    .collect();
                if violations.len() > MAX_VIOLATIONS {
                    list.push(tonic_types::FieldViolation::new(
                        "",
                        format!("… and {} more", violations.len() - MAX_VIOLATIONS),
                    ));
                }
                Status::with_error_details(code, message, ErrorDetails::with_bad_request(list))
            }
            _ => Status::new(code, message),
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

    #[test]
    fn echoed_values_are_cut_at_a_character() {
        assert_eq!(truncate_for_message("nordstad/3"), "nordstad/3");
        let long = "å".repeat(200);
        let cut = truncate_for_message(&long);
        assert_eq!(cut.chars().count(), ECHO_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(
            truncate_for_message(&"x".repeat(ECHO_CHARS)).len(),
            ECHO_CHARS
        );
    }

    #[test]
    fn statuses_are_bounded_whatever_the_error_says() {
        let huge = "x".repeat(1_200_000);
        let s: Status = ApiError::NotFound(huge.clone()).into();
        assert!(s.message().chars().count() <= MAX_MESSAGE_CHARS + 1);
        let many: Vec<FieldViolation> = (0..1000)
            .map(|i| FieldViolation {
                field: format!("needs[{i}].{huge}"),
                description: huge.clone(),
            })
            .collect();
        let s: Status = ApiError::Invalid(many).into();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().chars().count() <= MAX_MESSAGE_CHARS + 1);
        assert!(s.details().len() < 100 * 2 * (MAX_DETAIL_CHARS + 16) + 256);
        use tonic_types::StatusExt;
        let bad = s.get_error_details().bad_request().unwrap().clone();
        assert_eq!(bad.field_violations.len(), MAX_VIOLATIONS + 1);
        assert!(bad.field_violations[MAX_VIOLATIONS]
            .description
            .contains("900 more"));
    }
}
