//! Xen's errno values (`xen/include/public/errno.h`), which are what a
//! hypercall returns, negated. They are the same on every architecture.

/// A Xen error number (positive; hypercalls return its negation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $val:expr, $doc:literal;)*) => {
        impl Errno {
            $(#[doc = $doc] pub const $name: Errno = Errno($val);)*

            /// The symbolic name, for messages (`"EINVAL"`).
            pub const fn name(self) -> &'static str {
                match self.0 {
                    $($val => stringify!($name),)*
                    _ => "E?",
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted.";
    ENOENT = 2, "No such file or directory.";
    ESRCH = 3, "No such process (domain).";
    EINTR = 4, "Interrupted system call.";
    EIO = 5, "I/O error.";
    ENXIO = 6, "No such device or address.";
    E2BIG = 7, "Arg list too long.";
    EBADF = 9, "Bad file number.";
    EAGAIN = 11, "Try again.";
    ENOMEM = 12, "Out of memory.";
    EACCES = 13, "Permission denied.";
    EFAULT = 14, "Bad address.";
    EBUSY = 16, "Device or resource busy.";
    EEXIST = 17, "File exists.";
    EXDEV = 18, "Cross-device link.";
    ENODEV = 19, "No such device.";
    EINVAL = 22, "Invalid argument.";
    ENOSPC = 28, "No space left on device.";
    EROFS = 30, "Read-only file system.";
    EMLINK = 31, "Too many links.";
    EDOM = 33, "Math argument out of domain of func.";
    ERANGE = 34, "Math result not representable.";
    EDEADLK = 35, "Resource deadlock would occur.";
    ENAMETOOLONG = 36, "File name too long.";
    ENOSYS = 38, "Function not implemented.";
    ENOTEMPTY = 39, "Directory not empty.";
    ENODATA = 61, "No data available.";
    EOVERFLOW = 75, "Value too large for defined data type.";
    ERESTART = 85, "Interrupted system call should be restarted (Xen-internal: continuation).";
    EMSGSIZE = 90, "Message too long.";
    EOPNOTSUPP = 95, "Operation not supported on transport endpoint.";
    EADDRINUSE = 98, "Address already in use.";
    ECONNREFUSED = 111, "Connection refused.";
}

impl Errno {
    /// The value a hypercall returns for this error (`-errno`).
    pub const fn to_ret(self) -> i64 {
        -(self.0 as i64)
    }

    /// Decodes a hypercall return value: `Some(errno)` for `-4095..=-1`.
    pub const fn from_ret(ret: i64) -> Option<Errno> {
        if ret < 0 && ret >= -4095 {
            Some(Errno(-ret as i32))
        } else {
            None
        }
    }
}

impl core::fmt::Display for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_xen_public_errno_h() {
        assert_eq!(Errno::EINVAL.0, 22);
        assert_eq!(Errno::ERESTART.0, 85);
        assert_eq!(Errno::EOPNOTSUPP.0, 95);
        assert_eq!(Errno::EINVAL.name(), "EINVAL");
        assert_eq!(Errno::from_ret(-22), Some(Errno::EINVAL));
        assert_eq!(Errno::from_ret(0), None);
        assert_eq!(Errno::ENOMEM.to_ret(), -12);
    }
}
