using BenchmarkDotNet.Running;
using Switch.Benchmarks.Journal;

// Run by filter, e.g.: dotnet run -c Release --project perf/Switch.Benchmarks -- --filter '*Ring*'
// A probe that reports a tail rather than a mean: dotnet run -c Release --project perf/Switch.Benchmarks -- segment-delete
if (args.Length > 0 && args[0] == "segment-delete") return SegmentDeleteProbe.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
