// The browser clients are embedded with include_dir, which cannot tell cargo
// which files it read: rebuild whenever anything under clients/ changes.
fn main() {
    println!("cargo:rerun-if-changed=clients/web");
    println!("cargo:rerun-if-changed=clients/js");
}
