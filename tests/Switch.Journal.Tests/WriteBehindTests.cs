using Microsoft.Win32.SafeHandles;

namespace Switch.Journal.Tests;

/// <summary>What <see cref="WriteBehind"/> hands over and when: nothing before the bound, then the range up to the last
/// whole page; the rest at a close; nothing when off; a bound outside its limits refused. (That the kernel then holds no
/// dirty page behind it is the host's test, on the switch's own files.)</summary>
public sealed class WriteBehindTests : IDisposable
{
    private readonly TempJournalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Ranges_are_handed_once_the_bound_is_appended_behind_them_ending_at_a_page_and_the_rest_at_the_close()
    {
        const long behindBytes = 64 << 10;
        using var writeBehind = new WriteBehind(behindBytes);
        using SafeFileHandle file = File.OpenHandle(Path.Combine(_dir.Path, "feed.bin"), FileMode.Create, FileAccess.Write);
        RandomAccess.Write(file, new byte[300_000], 0);
        long started = 0;
        writeBehind.Appended(file, ref started, behindBytes - 1);
        Assert.Equal(0, started); // not yet the bound
        writeBehind.Appended(file, ref started, behindBytes + 100);
        long expected = OperatingSystem.IsLinux() ? behindBytes : 0; // 65,536 is a page boundary
        Assert.Equal(expected, started);
        writeBehind.Appended(file, ref started, 2 * behindBytes - 1);
        Assert.Equal(expected, started); // one byte short of the bound behind it
        writeBehind.Appended(file, ref started, 2 * behindBytes + 4096 + 10);
        Assert.Equal(OperatingSystem.IsLinux() ? 2 * behindBytes + 4096 : 0, started); // up to the last whole page
        writeBehind.Closing(file, ref started, 300_000);
        Assert.Equal(OperatingSystem.IsLinux() ? 300_000 : 0, started); // the rest, whatever its size
        Assert.True(writeBehind.Drain(timeoutMs: 10_000));
        if (!OperatingSystem.IsLinux()) return;
        Assert.Equal(3, writeBehind.RangesDone);
        Assert.Equal(300_000, writeBehind.BytesStarted);
        Assert.Equal(0, writeBehind.Failures);
    }

    [Fact]
    public void A_file_closed_by_its_owner_before_its_range_is_started_keeps_its_descriptor_until_then()
    {
        using var writeBehind = new WriteBehind(WriteBehind.MinBehindBytes);
        for (int i = 0; i < 50; i++)
        {
            long started = 0;
            using (SafeFileHandle file = File.OpenHandle(Path.Combine(_dir.Path, $"segment-{i}.bin"), FileMode.Create, FileAccess.Write))
            {
                RandomAccess.Write(file, new byte[WriteBehind.MinBehindBytes + 4096], 0);
                writeBehind.Closing(file, ref started, WriteBehind.MinBehindBytes + 4096);
            } // closed at once: the queue's reference keeps the descriptor open until its range is started
        }
        Assert.True(writeBehind.Drain(timeoutMs: 10_000));
        Assert.Equal(0, writeBehind.Failures); // EBADF had the descriptor been closed under the thread
        if (OperatingSystem.IsLinux()) Assert.Equal(50 * (WriteBehind.MinBehindBytes + 4096), writeBehind.BytesStarted);
    }

    [Fact]
    public void Off_hands_nothing_and_a_bound_outside_its_limits_is_refused()
    {
        using SafeFileHandle file = File.OpenHandle(Path.Combine(_dir.Path, "feed.bin"), FileMode.Create, FileAccess.Write);
        long started = 0;
        WriteBehind.Off.Appended(file, ref started, 1L << 30);
        WriteBehind.Off.Closing(file, ref started, 1L << 30);
        Assert.Equal(0, started);
        Assert.False(WriteBehind.Off.Enabled);
        foreach (long bad in new[] { -1L, 1, WriteBehind.MinBehindBytes - 1, WriteBehind.MaxBehindBytes + 1 })
        {
            var refused = Assert.Throws<ArgumentOutOfRangeException>(() => new WriteBehind(bad));
            Assert.StartsWith("0 (off) or 65536 to 1073741824", refused.Message);
        }
    }
}
