//! The `multishap` command-line tool.
fn main() {
    println!("multishap {}", env!("CARGO_PKG_VERSION"));
}
