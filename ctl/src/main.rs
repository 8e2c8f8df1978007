//! flotillactl: the Flotilla command-line tool.

fn main() {
    eprintln!("flotillactl: not implemented yet");
    std::process::exit(1);
}
