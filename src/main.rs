fn main() -> std::process::ExitCode {
    stelselnode::cli::run()
}
