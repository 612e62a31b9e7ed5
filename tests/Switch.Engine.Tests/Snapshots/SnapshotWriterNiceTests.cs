using Switch.Engine.Business;
using Switch.Engine.Pipeline;
using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>The snapshot writer thread runs nicer than the process (<see cref="NiceThread"/>): read by the kernel's own
/// account of the real writer thread, after a real snapshot.</summary>
public sealed class SnapshotWriterNiceTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(LogicHarness.StartUs);

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(SnapshotOptions.DefaultWriterNice)]
    [InlineData(NiceThread.MaxNice)]
    [InlineData(0)]
    public void The_writer_thread_runs_at_the_process_nice_plus_writerNice_and_the_logic_thread_does_not(int writerNice)
    {
        Assert.True(OperatingSystem.IsLinux(), "the writer's nice is a Linux feature; this test reads it from /proc");
        var outputs = new OutputRecorder();
        EngineOptions options = EngineTestOptions.For(_dir.Path, _clock) with
        {
            Snapshots = new SnapshotOptions { Enabled = true, EveryEvents = 0, AtBatchClose = false, AtStop = false, WriterNice = writerNice },
        };
        using SwitchEngine engine = SwitchEngine.Start(options, TestConfigs.Small(transactionCapacity: 64), outputs);
        new RandomWork(engine, outputs, _clock, seed: 20261207).Run(200);
        SnapshotResult taken = engine.RequestSnapshotAsync().WaitOrThrow();
        Assert.True(File.Exists(taken.Path));

        int processNice = NiceOf("/proc/self/stat");
        int writer = engine.SnapshotWriterThreadId;
        Assert.True(writer > 0, "the writer thread never told its id");
        Assert.Equal("switch-snapshot", File.ReadAllText($"/proc/self/task/{writer}/comm").Trim());
        Assert.Equal(Math.Min(NiceThread.MaxNice, processNice + writerNice), NiceOf($"/proc/self/task/{writer}/stat"));
        // Only the writer: every other thread (the logic, the journal's, the output's) keeps the process's. Other tests'
        // writers run beside this one: any thread the kernel names "switch-snapshot" (15 characters at most) is passed over.
        int others = 0;
        foreach (string task in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "comm")).Trim() == "switch-snapshot") continue;
                Assert.Equal(processNice, NiceOf(Path.Combine(task, "stat")));
                others++;
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
            {
                // The thread ended while listed.
            }
        }
        Assert.True(others > 3, $"only {others} other threads seen");
    }

    /// <summary>Field 19 of a <c>stat</c> file (proc(5)); the name in parentheses before it may hold spaces.</summary>
    private static int NiceOf(string statPath)
    {
        string stat = File.ReadAllText(statPath);
        string[] after = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(after[19 - 3]);
    }
}
