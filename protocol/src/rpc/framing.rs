//! Line framing with a size limit, over any `BufRead`.

use std::io::BufRead;

/// Largest request or response accepted, in bytes (the line terminator excluded).
pub const MAX_MESSAGE_SIZE: usize = 1 << 20;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer sent more than the limit without a line break.
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    /// The stream failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one `\n`-terminated message into `buf` (cleared first). Returns `Ok(false)` on a clean
/// end of stream before any byte.
pub fn read_message<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<bool, FrameError> {
    buf.clear();
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok(!buf.is_empty());
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if buf.len() + chunk.len() > max {
            return Err(FrameError::TooLarge(max));
        }
        buf.extend_from_slice(chunk);
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_limits() {
        let mut r = std::io::Cursor::new(b"{\"a\":1}\n{\"b\":2}\npartial".to_vec());
        let mut buf = Vec::new();
        assert!(read_message(&mut r, &mut buf, 100).unwrap());
        assert_eq!(buf, b"{\"a\":1}");
        assert!(read_message(&mut r, &mut buf, 100).unwrap());
        assert_eq!(buf, b"{\"b\":2}");
        assert!(read_message(&mut r, &mut buf, 100).unwrap());
        assert_eq!(buf, b"partial");
        assert!(!read_message(&mut r, &mut buf, 100).unwrap());
        let mut big = std::io::Cursor::new(vec![b'x'; 1000]);
        assert!(matches!(
            read_message(&mut big, &mut buf, 100),
            Err(FrameError::TooLarge(100))
        ));
    }
}
