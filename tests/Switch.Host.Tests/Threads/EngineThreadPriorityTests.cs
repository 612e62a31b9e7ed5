using Switch.Engine.Business;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;

namespace Switch.Host.Tests.Threads;

/// <summary>The engine's single-writer threads run at <c>engineThreadsNice</c> (<see cref="EngineThreadPriority"/>), read
/// from the kernel's own account of each thread; every other thread keeps the process's. Without the privilege to
/// lower a nice the kernel refuses, and the threads keep the process's. A switch started by another test keeps the
/// default (0, off), and one starting beside these has its threads at the process's until it sets them: these run
/// alone, and look only at the threads their own switch started.</summary>
[Collection(ReadsEveryThreadsNice.Name)]
public sealed class EngineThreadPriorityTests
{
    private const int Nice = -10;

    [Fact]
    public void Threads_named_as_the_engine_s_get_the_nice_and_others_keep_the_process_s()
    {
        Assert.True(OperatingSystem.IsLinux(), "a Linux feature; this test reads it from /proc");
        int processNice = NiceOf("/proc/self/stat");
        using var release = new ManualResetEventSlim(false);
        (Thread engineLike, int engineTid) = Waiting("switch-archiver", release);
        (Thread other, int otherTid) = Waiting("other-worker", release);
        try
        {
            (int set, int refused) = EngineThreadPriority.Apply(Nice);
            Assert.True(set + refused >= 1, "the engine-named thread was not found");
            bool privileged = refused == 0;
            Assert.Equal(privileged ? Nice : processNice, NiceOf($"/proc/self/task/{engineTid}/stat"));
            Assert.Equal(processNice, NiceOf($"/proc/self/task/{otherTid}/stat"));
        }
        finally
        {
            release.Set();
            engineLike.Join();
            other.Join();
        }
    }

    [Fact]
    public async Task A_started_switch_runs_its_journal_logic_output_and_archive_threads_at_the_configured_nice()
    {
        Assert.True(OperatingSystem.IsLinux(), "a Linux feature; this test reads it from /proc");
        // Only this switch's threads: an engine another test left (started without a host, or still stopping) is not its.
        var before = Directory.GetDirectories("/proc/self/task").ToHashSet();
        Assert.Equal(0, HostConfig.EmbeddedDefault().EngineThreadsNice); // off unless asked for
        await using RunningSwitch running = await RunningSwitch.StartAsync(RunningSwitch.TestConfig("data") with { EngineThreadsNice = Nice });
        int processNice = NiceOf("/proc/self/stat");
        bool privileged = CanLowerNice();
        // A thread that starts after the host looked (or that the kernel had not yet named) is set at the next look, 2 s on.
        Thread.Sleep(3_000);
        var seen = new HashSet<string>();
        foreach (string task in Directory.GetDirectories("/proc/self/task").Where(t => !before.Contains(t)))
        {
            try
            {
                string name = File.ReadAllText(Path.Combine(task, "comm")).Trim();
                if (Array.IndexOf(EngineThreadPriority.ThreadNames, name) < 0) continue;
                int nice = NiceOf(Path.Combine(task, "stat"));
                Assert.True(nice == (privileged ? Nice : processNice), $"{name} ({task}) runs at nice {nice}");
                seen.Add(name);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
            {
                // The thread ended while listed.
            }
        }
        Assert.Superset(new HashSet<string> { "switch-journal", "switch-jrnl-io", "switch-logic", "switch-output", "switch-archiver", "switch-arch-io" }, seen);
    }

    [Fact]
    public void A_nice_above_0_or_below_minus_20_is_refused_naming_the_field()
    {
        foreach (int bad in new[] { 1, -21 })
        {
            HostConfig config = RunningSwitch.TestConfig("data") with { EngineThreadsNice = bad };
            ConfigException refused = Assert.Throws<ConfigException>(config.Validate);
            Assert.StartsWith("configuration: engineThreadsNice: ", refused.Message);
        }
    }

    /// <summary>Whether this process may lower a thread's nice below 0: tried on a thread of its own, then let go.</summary>
    private static bool CanLowerNice()
    {
        using var release = new ManualResetEventSlim(false);
        (Thread probe, int tid) = Waiting("nice-probe", release);
        try
        {
            return Switch.Engine.Snapshots.NiceThread.TrySet(tid, -1);
        }
        finally
        {
            release.Set();
            probe.Join();
        }
    }

    /// <summary>A thread named <paramref name="name"/> waiting for <paramref name="release"/>, and its kernel id.</summary>
    private static (Thread Thread, int Tid) Waiting(string name, ManualResetEventSlim release)
    {
        int tid = 0;
        using var started = new ManualResetEventSlim(false);
        var thread = new Thread(() =>
        {
            Volatile.Write(ref tid, Switch.Engine.Snapshots.NiceThread.CurrentThreadId());
            started.Set();
            release.Wait();
        }) { Name = name, IsBackground = true };
        thread.Start();
        Assert.True(started.Wait(10_000), $"thread {name} never started");
        return (thread, Volatile.Read(ref tid));
    }

    /// <summary>Field 19 of a <c>stat</c> file (proc(5)); the name in parentheses before it may hold spaces.</summary>
    private static int NiceOf(string statPath)
    {
        string stat = File.ReadAllText(statPath);
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(fields[16]); // field 3 is fields[0]: field 19 is fields[16]
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ReadsEveryThreadsNice
{
    public const string Name = "reads every thread's nice";
}
