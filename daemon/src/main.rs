//! The `vpnd` binary.

fn main() {
    eprintln!("vpnd: not built yet");
    std::process::exit(1);
}
