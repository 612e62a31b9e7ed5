using Switch.Engine.Business;
using Switch.Engine.Pipeline;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>The start's throwaway capture (it takes the first capture's compilation off the first snapshot's pause):
/// it must get through a whole capture with the live configuration's participants, then leave nothing behind. It
/// deletes its directory only after a capture that completed, so a warm-up that failed leaves it and fails here.</summary>
public sealed class SnapshotWarmUpTests
{
    public static TheoryData<string> Rules => ["small", "default"];

    [Theory]
    [MemberData(nameof(Rules))]
    public void The_warm_up_takes_a_whole_capture_of_a_throwaway_logic_and_removes_its_directory(string rules)
    {
        using var dir = new TempDirectory();
        SwitchConfig live = rules == "small" ? TestConfigs.Small() : TestConfigs.Small() with { Rules = new RulesConfig() };
        string warmUp = Path.Combine(dir.Path, "archive-warm-up");
        SnapshotWarmUp.Run(warmUp, live);
        Assert.False(Directory.Exists(warmUp), "the warm-up failed: its directory was left behind");
    }
}
