using Switch.Engine.Snapshots;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Snapshots;

/// <summary>The snapshot file on its own: a large one, fsynced in slices as it is written, reads back whole.</summary>
public sealed class SnapshotFileTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_file_fsynced_every_mebibyte_as_it_is_written_reads_back_whole_and_checked()
    {
        // 24 MiB of array, every page with data: 24 fsyncs along the way, then the one at the end.
        var live = new long[3 << 20];
        for (int i = 0; i < live.Length; i++) live[i] = i * 7L + 1;
        var position = new SnapshotPosition(RecordNo: 42, RecordAddress: 4096, EventsApplied: 41, MaxCorrelationId: 9);
        byte[] config = TestConfigs.Small().ToJsonUtf8();
        byte[] state = [1, 2, 3];
        byte[] views = [4, 5];
        string path = Path.Combine(_dir.Path, SnapshotFile.NameFor(position.RecordNo));
        var points = new List<SnapshotWritePoint>();
        long bytes = SnapshotFile.Write(path, position, config, state, [new PageCapture<long>(live)], () => views, () => "token",
            points.Add, syncEveryBytes: 1L << 20, pacer: new WritePacer(1L << 30));

        Assert.Equal(new FileInfo(path).Length, bytes);
        Assert.True(bytes > live.Length * sizeof(long));
        Assert.Equal([SnapshotWritePoint.TempPartlyWritten, SnapshotWritePoint.TempWritten, SnapshotWritePoint.Renamed], points);
        Assert.Equal("token", SnapshotStore.ArchiveToken(path));
        using SnapshotFile.Opened opened = SnapshotFile.Open(path);
        Assert.Equal(position, opened.Position);
        Assert.Equal(state, opened.State);
        var read = new long[live.Length];
        opened.Arrays.ReadInto<long>(read, "test array");
        Assert.Equal(views, opened.Arrays.ReadViews());
        opened.Arrays.VerifyEnd();
        Assert.Equal(live, read);
    }
}
