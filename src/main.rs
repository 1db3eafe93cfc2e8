fn main() {
    std::process::exit(git_atomic::run());
}
