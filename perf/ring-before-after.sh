#!/bin/bash
# The ring benchmarks of a base commit's ring (namespace Switch.OldRing, types prefixed Old) against this tree's, in one
# BenchmarkDotNet run, so the ratios hold on a shared, noisy machine. The project is generated under
# perf/RingBeforeAfter (ignored by git) from `git show BASE:...`; nothing of the base is kept.
#   perf/ring-before-after.sh main --job short --iterationCount 7 --inProcess
set -euo pipefail
base=${1:?usage: ring-before-after.sh BASE [BenchmarkDotNet arguments...]}
shift
root=$(git rev-parse --show-toplevel)
dir=$root/perf/RingBeforeAfter
rm -rf "$dir" && mkdir -p "$dir/Old" "$dir/OldBench"
to_old() {
    sed -e 's/namespace Switch\.Ring\b/namespace Switch.OldRing/' -e 's/using Switch\.Ring;/using Switch.OldRing;/' \
        -e 's/namespace Switch\.Benchmarks\.Ring/namespace Switch.Benchmarks.OldRing/' \
        -e 's/\bRing\(OneToOne\|Chain\|ThreeToOne\)Benchmark\b/OldRing\1/g' \
        -e 's/\bBenchEvent\b/OldBenchEvent/g; s/\bSummingHandler\b/OldSummingHandler/g; s/\bRingBenchmarkSupport\b/OldRingSupport/g' \
        -e 's/typeof(RingBenchmarkConfig)/typeof(Switch.Benchmarks.Ring.RingBenchmarkConfig)/'
}
for f in $(git -C "$root" ls-tree --name-only "$base" engine/Switch.Ring/ | grep '\.cs$'); do
    git -C "$root" show "$base:$f" | to_old > "$dir/Old/$(basename "$f")"
done
# This tree's shapes on both rings, less what only this tree's ring offers (between "new ring only" marks).
for f in RingBenchmarkSupport RingOneToOneBenchmark RingChainBenchmark RingThreeToOneBenchmark; do
    sed '/new ring only: begin/,/new ring only: end/d' "$root/perf/Switch.Benchmarks/Ring/$f.cs" | to_old > "$dir/OldBench/$f.cs"
done
cat > "$dir/RingBeforeAfter.csproj" <<'PROJECT'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <Optimize>true</Optimize>
    <TreatWarningsAsErrors>false</TreatWarningsAsErrors>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="BenchmarkDotNet" />
    <ProjectReference Include="..\..\engine\Switch.Ring\Switch.Ring.csproj" />
    <Compile Include="..\Switch.Benchmarks\Ring\*.cs" />
  </ItemGroup>
</Project>
PROJECT
echo 'BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Switch.Benchmarks.Ring.RingBenchmarkConfig).Assembly).Run(args);' > "$dir/Program.cs"
dotnet run -c Release --project "$dir" -- --filter '*' "$@"
