//! Links Debian's PocketSphinx (`libpocketsphinx-dev`), whose API the offline engine binds by hand.

fn main() {
    for lib in ["pocketsphinx", "sphinxbase"] {
        if let Err(e) = pkg_config::Config::new().probe(lib) {
            panic!(
                "{lib} not found by pkg-config ({e}); install the Debian package libpocketsphinx-dev"
            );
        }
    }
}
