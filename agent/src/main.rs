//! The Flotilla agent.

fn main() {
    eprintln!("flotilla-agent: not implemented yet");
    std::process::exit(1);
}
