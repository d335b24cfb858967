//! Field paths for messages: `interface.mtu`, `peers[1].allowed_ips[0]`.

/// `base.name`, or `name` at the top level.
pub(super) fn field(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}.{name}")
    }
}

/// `base[i]`.
pub(super) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// `base` followed by a relative path such as `name` or `addresses[2]`.
pub(super) fn join(base: &str, rel: &str) -> String {
    if rel.starts_with('[') || rel.is_empty() {
        format!("{base}{rel}")
    } else {
        field(base, rel)
    }
}

/// The first segment of a relative path: `addresses` of `addresses[2]`, `a` of `a.b`.
pub(super) fn head(rel: &str) -> &str {
    let end = rel.find(['.', '[']).unwrap_or(rel.len());
    &rel[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_paths() {
        assert_eq!(field("", "interface"), "interface");
        assert_eq!(field("interface", "mtu"), "interface.mtu");
        assert_eq!(index("peers", 1), "peers[1]");
        assert_eq!(
            join("peers[1]", "allowed_ips[0]"),
            "peers[1].allowed_ips[0]"
        );
        assert_eq!(join("peers", "[1]"), "peers[1]");
        assert_eq!(head("allowed_ips[0]"), "allowed_ips");
        assert_eq!(head("a.b"), "a");
        assert_eq!(head("a"), "a");
    }
}
