//! Fixed packet memory mapped straight from the kernel.
//!
//! The data plane's batches reserve room for the largest packet in every slot (64 KiB: the
//! interface MTU may be raised from outside at any time, and a GRO receive can be that big),
//! but ordinary traffic only ever touches the first page or two of a slot. Anonymous mappings
//! are filled with zero pages on first touch, so only what is used becomes resident, whatever
//! the allocator would have done with a large zeroed allocation.

use std::io;
use std::ptr::NonNull;

/// A zero-initialised, page-aligned byte buffer of fixed size backed by an anonymous mapping.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a Region owns its mapping exclusively, like a Vec<u8> owns its heap block; access goes
// through &self / &mut self.
unsafe impl Send for Region {}
// SAFETY: shared access only hands out &[u8].
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region").field("len", &self.len).finish()
    }
}

impl Region {
    /// Maps `len` bytes (at least one page is mapped even for 0).
    pub fn new(len: usize) -> io::Result<Self> {
        let map_len = len.max(1);
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
        // no existing memory; the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Region { ptr, len })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::ops::Deref for Region {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes (zero-filled by the kernel) owned by self
        // for self's lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Region {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for deref, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe the mapping made in `new`, which nothing borrows any more.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len.max(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_writable_and_sized() {
        let mut r = Region::new(1 << 20).unwrap();
        assert_eq!(r.len(), 1 << 20);
        assert!(r.iter().step_by(4096).all(|&b| b == 0));
        r[12345] = 7;
        assert_eq!(r[12345], 7);
        assert!(Region::new(0).unwrap().is_empty());
    }
}
