using System.Runtime.CompilerServices;
using Switch.Contracts.V1;
using Switch.Host.Tests.EndToEnd;
using Xunit.Abstractions;

namespace Switch.Host.Tests.Limits;

/// <summary>
/// A switch that is disposed gives its memory back: nothing (a static cache, a registry callback, a timer, a thread)
/// keeps it reachable, and the process does not grow by a switch for each one started and disposed. A test run holds
/// hundreds of switches over its life in one process; each that leaked kept its tables, rings and archive pages (about
/// 150 MiB for a test's switch, 1 GiB at the production sizes) to the end of the run. The real host with its simulated
/// banks, real sockets, a journal on disk.
/// </summary>
[Collection(MeasuresProcessMemory.Name)]
public sealed class DisposedSwitchMemoryTests(ITestOutputHelper output)
{
    private const int Cycles = 5;
    private const long Mib = 1 << 20;
    /// <summary>Threads of a disposed switch may still be on their way out: a switch gets this long to become unreachable
    /// (generous: a leak never does).</summary>
    private static readonly TimeSpan Unreachable = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_switch_started_and_disposed_again_and_again_is_collected_and_the_process_does_not_grow_by_it()
    {
        // The first start pays the process's one-time costs (compiled code, thread pool, static tables): not a leak.
        List<WeakReference> disposed = [await StartPayAndDisposeAsync(null)];
        await CollectUntilUnreachableAsync(disposed);
        long baselineHeap = GC.GetGCMemoryInfo().HeapSizeBytes;
        long baselineRss = Environment.WorkingSet;

        var oneSwitch = new SwitchMemory();
        disposed.Clear();
        for (int i = 0; i < Cycles; i++) disposed.Add(await StartPayAndDisposeAsync(i == 0 ? oneSwitch : null));
        int alive = await CollectUntilUnreachableAsync(disposed);
        long afterHeap = GC.GetGCMemoryInfo().HeapSizeBytes;
        long afterRss = Environment.WorkingSet;

        output.WriteLine($"one running switch: GC heap +{oneSwitch.HeapBytes / Mib} MiB, working set +{oneSwitch.RssBytes / Mib} MiB; " +
            $"after {Cycles} started and disposed: GC heap {baselineHeap / Mib} -> {afterHeap / Mib} MiB, working set {baselineRss / Mib} -> {afterRss / Mib} MiB");
        Assert.True(alive == 0, $"{alive} of {Cycles} disposed switch engines are still reachable after {Unreachable.TotalSeconds} s of full collections");
        // A leak grows the process by a switch a cycle; what the cycles may leave (pooled buffers, compiled code, thread
        // stacks, the allocator's free lists) is well under one switch, and a leak of every switch is five times it.
        long one = Math.Max(oneSwitch.HeapBytes, oneSwitch.RssBytes);
        Assert.True(oneSwitch.HeapBytes > 16 * Mib, $"a running switch took {oneSwitch.HeapBytes / Mib} MiB of GC heap: the measure is broken");
        Assert.True(afterHeap - baselineHeap < one / 2,
            $"the GC heap grew {(afterHeap - baselineHeap) / Mib} MiB over {Cycles} disposed switches of {one / Mib} MiB each");
        Assert.True(afterRss - baselineRss < one,
            $"the working set grew {(afterRss - baselineRss) / Mib} MiB over {Cycles} disposed switches of {one / Mib} MiB each");
    }

    private sealed class SwitchMemory
    {
        public long HeapBytes;
        public long RssBytes;
    }

    /// <summary>Starts a switch, pays through it, disposes it; the weak reference is to its engine. Not inlined: no
    /// local of the caller's frame may keep the switch reachable.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<WeakReference> StartPayAndDisposeAsync(SwitchMemory? measure)
    {
        long heapBefore = measure is null ? 0 : GC.GetGCMemoryInfo().HeapSizeBytes;
        long rssBefore = measure is null ? 0 : Environment.WorkingSet;
        await using RunningSwitch sw = await RunningSwitch.StartAsync();
        TransferResult paid = await sw.PayAsync(RunningSwitch.Payment("LEAK-" + Guid.NewGuid().ToString("N")[..16], 1_00));
        Assert.Equal(TransactionStatus.Succeeded, paid.Status);
        if (measure is not null)
        {
            Collect();
            measure.HeapBytes = GC.GetGCMemoryInfo().HeapSizeBytes - heapBefore;
            measure.RssBytes = Environment.WorkingSet - rssBefore;
        }
        return new WeakReference(sw.Host.Engine);
    }

    /// <summary>Collects until every engine is unreachable or the time is up; how many are still reachable.</summary>
    private static async Task<int> CollectUntilUnreachableAsync(List<WeakReference> engines)
    {
        DateTime giveUp = DateTime.UtcNow + Unreachable;
        while (true)
        {
            Collect();
            int alive = engines.Count(w => w.IsAlive);
            if (alive == 0 || DateTime.UtcNow > giveUp) return alive;
            await Task.Delay(250);
        }
    }

    /// <summary>Every generation collected and compacted, finalizers run, free memory given back to the OS.</summary>
    private static void Collect()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
    }
}
