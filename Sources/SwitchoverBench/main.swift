import Foundation

// Benchmarks, one subcommand each, built in release by bench/<name>.sh:
//   SwitchoverBench trust [iterations]       (also `SwitchoverBench [iterations]`, as bench/trust.sh calls it)
//   SwitchoverBench fleet [--servers 1000,10000] [--trials 20]
//   SwitchoverBench suite --switchover PATH [--quick] [--json PATH] [--only rollback,cutover,...]
//                                            (bench/run: every figure of BENCHMARKS.md)

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "fleet":
    try await FleetBenchmark.run(Array(arguments.dropFirst()))
case "suite":
    try await Suite.run(Array(arguments.dropFirst()))
case "trust":
    try await TrustBenchmark.run(Array(arguments.dropFirst()))
case nil:
    try await TrustBenchmark.run([])
case let first? where Int(first) != nil:
    try await TrustBenchmark.run(arguments)
default:
    FileHandle.standardError.write(Data("usage: SwitchoverBench trust [iterations] | fleet [--servers 1000,10000] [--trials N] | suite --switchover PATH [--quick] [--json PATH]\n".utf8))
    exit(2)
}
