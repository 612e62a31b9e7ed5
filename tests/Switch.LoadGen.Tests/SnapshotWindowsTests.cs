using Switch.LoadGen;

namespace Switch.LoadGen.Tests;

/// <summary>Which requests were sent while a snapshot was taken: by their intended send time against the windows.</summary>
public sealed class SnapshotWindowsTests
{
    [Fact]
    public void A_request_is_inside_a_window_from_its_begin_to_its_end_and_an_open_one_up_to_now()
    {
        var windows = new SnapshotWindows(capacity: 4);
        Assert.False(windows.Contains(100)); // none yet
        Assert.True(windows.Begin(100));
        Assert.True(windows.Contains(100));
        Assert.True(windows.Contains(long.MaxValue - 1)); // open: anything sent after its begin is inside
        Assert.False(windows.Contains(99));
        windows.End(200);
        Assert.True(windows.Contains(200));
        Assert.False(windows.Contains(201));
        Assert.True(windows.Begin(500));
        windows.End(600);
        Assert.True(windows.Contains(150)); // an older window, answered late
        Assert.False(windows.Contains(300)); // between them
        Assert.True(windows.Contains(550));
        Assert.Equal(2, windows.Count);
        Assert.Equal(200.0 / System.Diagnostics.Stopwatch.Frequency, windows.Seconds(1000), 12);
    }

    [Fact]
    public void Windows_come_one_at_a_time_in_order_and_a_full_set_refuses_more()
    {
        var windows = new SnapshotWindows(capacity: 1);
        Assert.Throws<InvalidOperationException>(() => windows.End(5)); // none open
        Assert.True(windows.Begin(10));
        Assert.Throws<InvalidOperationException>(() => windows.Begin(20)); // one still open
        windows.End(30);
        Assert.Throws<ArgumentOutOfRangeException>(() => windows.Begin(25)); // before the last one ended
        Assert.False(windows.Begin(40)); // full: the rest of the run counts as outside
        Assert.False(windows.Contains(45));
    }
}
