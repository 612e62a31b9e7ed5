using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using FASTER.core;

namespace Switch.Journal.Tests;

/// <summary>The device's writes on a thread of its own: completed in the order given, off the thread pool, a failed
/// write's error told to FASTER and the next writes made, every queued write made before the device closes.</summary>
public sealed class DeviceWriteThreadTests : IDisposable
{
    private const int Sector = (int)DirectFile.AlignBytes;
    private readonly TempJournalDirectory _dir = new();
    private readonly List<IntPtr> _buffers = [];

    public void Dispose()
    {
        foreach (IntPtr b in _buffers) unsafe { NativeMemory.AlignedFree((void*)b); }
        _dir.Dispose();
    }

    /// <summary>An aligned buffer of <paramref name="sectors"/> sectors, every byte <paramref name="fill"/>.</summary>
    private IntPtr Buffer(int sectors, byte fill)
    {
        IntPtr b;
        unsafe
        {
            b = (IntPtr)NativeMemory.AlignedAlloc((nuint)(sectors * Sector), (nuint)Sector);
            new Span<byte>((void*)b, sectors * Sector).Fill(fill);
        }
        _buffers.Add(b);
        return b;
    }

    private sealed record Done(int Order, uint Error, uint Bytes, bool PoolThread, string? Thread);

    private static DeviceIOCompletionCallback Into(ConcurrentQueue<Done> done) => (error, bytes, context) =>
        done.Enqueue(new Done((int)context, error, bytes, System.Threading.Thread.CurrentThread.IsThreadPoolThread, System.Threading.Thread.CurrentThread.Name));

    [Fact]
    public void Writes_complete_in_the_order_given_on_the_device_thread_and_land_where_asked()
    {
        const int writes = 200;
        var done = new ConcurrentQueue<Done>();
        string baseName = Path.Combine(_dir.Path, "ordered.log");
        using (var device = new DirectLogDevice(baseName, recover: false, writeThread: "test-dev-io"))
        {
            device.Initialize(1L << 30);
            for (int i = 0; i < writes; i++)
            {
                device.WriteAsync(Buffer(1, (byte)(i + 1)), 0, (ulong)(i * Sector), Sector, Into(done), i);
            }
            WaitUntil(() => done.Count == writes);
            Assert.Equal(0, device.Writes.InFlight);
            Assert.Equal(writes, device.Writes.Completed);
        }
        Assert.Equal(Enumerable.Range(0, writes), done.Select(d => d.Order));
        Assert.All(done, d =>
        {
            Assert.Equal(0u, d.Error);
            Assert.Equal((uint)Sector, d.Bytes);
            Assert.False(d.PoolThread);
            Assert.Equal("test-dev-io", d.Thread);
        });
        byte[] file = File.ReadAllBytes(baseName + ".0");
        for (int i = 0; i < writes; i++) Assert.True(file.AsSpan(i * Sector, Sector).IndexOfAnyExcept((byte)(i + 1)) < 0, $"sector {i}");
    }

    [Fact]
    public void A_failed_write_tells_its_error_and_the_next_write_is_made()
    {
        var done = new ConcurrentQueue<Done>();
        using var device = new DirectLogDevice(Path.Combine(_dir.Path, "failing.log"), recover: false, writeThread: "test-dev-io");
        device.Initialize(1L << 30);
        device.WriteAsync(Buffer(1, 1), 0, 0, Sector, Into(done), 0);
        WaitUntil(() => done.Count == 1);
        if (!device.Direct) return; // a file system without O_DIRECT takes a misaligned write: nothing to fail here
        // O_DIRECT refuses memory off the sector's alignment (EINVAL): the write fails in the system call.
        device.WriteAsync(Buffer(2, 2) + 1, 0, (ulong)Sector, Sector, Into(done), 1);
        device.WriteAsync(Buffer(1, 3), 0, (ulong)(2 * Sector), Sector, Into(done), 2);
        WaitUntil(() => done.Count == 3);
        Done[] all = done.ToArray();
        Assert.Equal([0, 1, 2], all.Select(d => d.Order));
        Assert.NotEqual(0u, all[1].Error);
        Assert.Equal(0u, all[1].Bytes);
        Assert.Equal(0u, all[2].Error);
        Assert.Equal(0, device.Writes.InFlight);
    }

    [Fact]
    public void Closing_the_device_makes_every_queued_write_first()
    {
        const int writes = 64;
        var done = new ConcurrentQueue<Done>();
        string baseName = Path.Combine(_dir.Path, "closing.log");
        var device = new DirectLogDevice(baseName, recover: false, writeThread: "test-dev-io");
        device.Initialize(1L << 30);
        for (int i = 0; i < writes; i++) device.WriteAsync(Buffer(16, (byte)(i + 1)), 0, (ulong)(i * 16 * Sector), 16 * Sector, Into(done), i);
        device.Dispose();
        Assert.Equal(writes, done.Count);
        Assert.All(done, d => Assert.Equal(0u, d.Error));
        Assert.Equal(writes * 16L * Sector, new FileInfo(baseName + ".0").Length);
        Assert.Throws<ObjectDisposedException>(() => device.WriteAsync(Buffer(1, 1), 0, 0, Sector, Into(done), writes));
    }

    internal static void WaitUntil(Func<bool> condition, int timeoutMs = 10_000)
    {
        var waited = Stopwatch.StartNew();
        while (!condition())
        {
            if (waited.ElapsedMilliseconds > timeoutMs) throw new TimeoutException($"waited {timeoutMs} ms");
            Thread.Sleep(5);
        }
    }
}

/// <summary>A device write completes while every pool thread is blocked: the journal's commit never waits for the pool.
/// Alone: it starves the process's thread pool for a while.</summary>
[Collection(StarvesThePool.Name)]
public sealed class DeviceWritesWithoutThePoolTests : IDisposable
{
    private const uint Sector = (uint)DirectFile.AlignBytes;
    private readonly TempJournalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_write_completes_while_the_thread_pool_is_starved()
    {
        var release = new ManualResetEventSlim(); // not disposed: blockers not yet run still wait on it after the test
        using var device = new DirectLogDevice(Path.Combine(_dir.Path, "starved.log"), recover: false, writeThread: "test-dev-io");
        device.Initialize(1L << 30);
        IntPtr buffer;
        unsafe { buffer = (IntPtr)NativeMemory.AlignedAlloc(Sector, Sector); }
        try
        {
            int blockers = ThreadPool.ThreadCount + Environment.ProcessorCount + 8, started = 0;
            for (int i = 0; i < blockers; i++)
            {
                ThreadPool.UnsafeQueueUserWorkItem(_ =>
                {
                    Interlocked.Increment(ref started);
                    release.Wait(TimeSpan.FromSeconds(20));
                }, null);
            }
            DeviceWriteThreadTests.WaitUntil(() => ThreadPool.PendingWorkItemCount > 0); // the pool's threads all blocked
            using var written = new ManualResetEventSlim();
            var took = Stopwatch.StartNew();
            uint failed = uint.MaxValue;
            device.WriteAsync(buffer, 0, 0, Sector, (error, _, _) => { failed = error; written.Set(); }, null!);
            bool completed = written.Wait(TimeSpan.FromSeconds(5));
            long tookMs = took.ElapsedMilliseconds;
            bool poolStillStarved = Volatile.Read(ref started) < blockers;
            release.Set();
            Assert.True(completed, "the write did not complete within 5 s");
            Assert.Equal(0u, failed);
            // Only telling while the pool had not run every blocker: else it could have run the write on a new thread.
            Assert.True(poolStillStarved, "the pool grew past the blockers: nothing shown (a loaded machine?)");
            Assert.True(tookMs < 5_000, $"took {tookMs} ms");
        }
        finally
        {
            release.Set();
            unsafe { NativeMemory.AlignedFree((void*)buffer); }
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class StarvesThePool
{
    public const string Name = "starves the thread pool";
}
