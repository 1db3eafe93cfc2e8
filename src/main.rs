fn main() {
    // `git-atomic completions SHELL`, for install.sh: not part of the user's command tree.
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == git_atomic::cli::COMPLETIONS) {
        let shell = args.next();
        std::process::exit(git_atomic::cli::print_completions(shell.as_ref().and_then(|s| s.to_str())));
    }
    std::process::exit(git_atomic::run());
}
