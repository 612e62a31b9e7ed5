using BenchmarkDotNet.Running;

// Run by filter, e.g.: dotnet run -c Release --project perf/Switch.Benchmarks -- --filter '*Ring*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
