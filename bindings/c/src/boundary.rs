//! What every exported function goes through: the panic boundary, the
//! calling thread's last error, and checked conversion of C arguments.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::Value;
use walletlog_core::{json as wljson, Error, ErrorKind, Ledger};

use crate::{wl_ledger, wl_status};

/// Why a call failed: its status and what `wl_last_error_*` will say.
pub(crate) struct Failure {
    status: wl_status,
    detail: Value,
}

impl Failure {
    /// A caller mistake at the boundary: a NULL pointer, bytes that are not
    /// UTF-8. `argument` names the parameter as the header spells it.
    pub(crate) fn argument(argument: &str, problem: impl std::fmt::Display) -> Self {
        Failure {
            status: wl_status::WL_ERR_INVALID_ARGUMENT,
            detail: walletlog_core::json::face_error(
                "invalid_argument",
                &format!("invalid argument {argument}: {problem}"),
                Some(argument),
            ),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let status = match e.kind() {
            ErrorKind::Validation => wl_status::WL_ERR_VALIDATION,
            ErrorKind::Conflict => wl_status::WL_ERR_CONFLICT,
            ErrorKind::NotFound => wl_status::WL_ERR_NOT_FOUND,
            ErrorKind::Signature => wl_status::WL_ERR_SIGNATURE,
            ErrorKind::Plugin => wl_status::WL_ERR_PLUGIN,
            _ => wl_status::WL_ERR_STORAGE,
        };
        Failure {
            status,
            detail: wljson::error(&e),
        }
    }
}

impl From<walletlog_core::ValidationError> for Failure {
    fn from(e: walletlog_core::ValidationError) -> Self {
        Error::Validation(e).into()
    }
}

pub(crate) type Outcome<T = ()> = Result<T, Failure>;

/// The last failure of this thread, as a message and as JSON.
struct LastError {
    message: CString,
    json: CString,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

fn set_last_error(detail: &Value) {
    let message = detail
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("unknown error");
    let last = LastError {
        message: c_string_lossy(message),
        json: c_string_lossy(&detail.to_string()),
    };
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(last));
}

fn clear_last_error() {
    LAST_ERROR.with(|slot| *slot.borrow_mut() = None);
}

/// The last error message of this thread, or an empty string.
pub(crate) fn last_error_message() -> *const c_char {
    LAST_ERROR.with(|slot| match slot.borrow().as_ref() {
        Some(last) => last.message.as_ptr(),
        None => c"".as_ptr(),
    })
}

/// A copy of the last error of this thread as JSON, if there is one.
pub(crate) fn last_error_json() -> Option<CString> {
    LAST_ERROR.with(|slot| slot.borrow().as_ref().map(|last| last.json.clone()))
}

/// Interior NULs cannot occur in our messages (JSON escapes them, and
/// messages quote user text with `{:?}`), but a C string must not have one.
fn c_string_lossy(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}

/// Runs `body` behind the panic boundary: clears this thread's last error,
/// and turns a failure into its status (setting the last error) and a panic
/// into `WL_ERR_PANIC`.
pub(crate) fn call(body: impl FnOnce() -> Outcome) -> wl_status {
    clear_last_error();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => wl_status::WL_OK,
        Ok(Err(failure)) => {
            set_last_error(&failure.detail);
            failure.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with no message".to_owned());
            set_last_error(&walletlog_core::json::face_error(
                "panic",
                &format!("internal error (panic) inside walletlog: {what}"),
                None,
            ));
            wl_status::WL_ERR_PANIC
        }
    }
}

/// Runs `body` behind the panic boundary for a function that returns nothing
/// (`_free`, `_close`): a panic is swallowed, never unwound into C.
pub(crate) fn call_void(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

/// A required UTF-8 string argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Outcome<&'a str> {
    if ptr.is_null() {
        return Err(Failure::argument(name, "is NULL"));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::argument(
            name,
            format_args!(
                "is not valid UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// An optional UTF-8 string argument: NULL is `None`.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(ptr: *const c_char, name: &str) -> Outcome<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { str_arg(ptr, name) }.map(Some)
}

/// A byte buffer argument; NULL is allowed only with a length of 0.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes that outlive `'a`.
pub(crate) unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, name: &str) -> Outcome<&'a [u8]> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Failure::argument(
                name,
                format_args!("is NULL with a length of {len}"),
            ))
        };
    }
    if len > isize::MAX as usize {
        return Err(Failure::argument(name, "has a length beyond isize::MAX"));
    }
    // SAFETY: non-NULL, `len` bytes readable by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The ledger behind a handle.
///
/// # Safety
/// `ptr` is NULL or a handle from `wl_ledger_open` not yet closed.
pub(crate) unsafe fn ledger_arg<'a>(ptr: *const wl_ledger) -> Outcome<&'a Ledger> {
    if ptr.is_null() {
        return Err(Failure::argument("ledger", "is NULL"));
    }
    // SAFETY: a live handle by the caller's contract.
    Ok(unsafe { &(*ptr).inner })
}

/// An output slot, checked before any work is done.
///
/// # Safety
/// `ptr` is NULL or points to a writable `T`.
pub(crate) unsafe fn out_arg<'a, T>(ptr: *mut T, name: &str) -> Outcome<&'a mut T> {
    if ptr.is_null() {
        return Err(Failure::argument(name, "is NULL"));
    }
    // SAFETY: non-NULL and writable by the caller's contract.
    Ok(unsafe { &mut *ptr })
}

/// Hands `value` to C as a NUL-terminated JSON string the caller frees with
/// `wl_string_free`.
pub(crate) fn write_json(out: &mut *mut c_char, value: &Value) {
    *out = c_string_lossy(&value.to_string()).into_raw();
}

/// Hands `text` to C as a string the caller frees with `wl_string_free`.
pub(crate) fn write_string(out: &mut *mut c_char, text: &str) {
    *out = c_string_lossy(text).into_raw();
}
