//! Looking up a group by name, thread-safely (`getgrnam_r`; `getgrnam` returns static storage
//! that another thread's lookup may overwrite).

use std::ffi::CString;
use std::io;

/// Largest buffer tried for one group entry (groups with thousands of members need more than
/// the usual 1 KiB; past 1 MiB the entry is not worth reading).
const MAX_BUFFER: usize = 1 << 20;

/// The gid of the group `name`, `Ok(None)` if there is no such group.
pub fn gid_of(name: &str) -> io::Result<Option<u32>> {
    let cname = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "group name contains NUL"))?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: all-zero is a valid `group` (null pointers, gid 0); getgrnam_r fills it.
        let mut entry: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` outlives `entry`'s use, and only
        // `gr_gid` (a plain integer) is read from it.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut entry,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => return Ok(Some(entry.gr_gid)),
            libc::ERANGE if buf.len() < MAX_BUFFER => buf.resize(buf.len() * 4, 0),
            // glibc reports "not found" as one of these in some NSS configurations.
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_group_exists_and_nonsense_does_not() {
        assert_eq!(gid_of("root").unwrap(), Some(0));
        assert_eq!(gid_of("nosuchgroup-vpnd-test").unwrap(), None);
        assert!(gid_of("a\0b").is_err());
    }
}
