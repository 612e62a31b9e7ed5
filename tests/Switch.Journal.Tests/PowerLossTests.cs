using Switch.Testing;
using Xunit.Abstractions;
using static Switch.Journal.Tests.JournalTestKit;

namespace Switch.Journal.Tests;

/// <summary>
/// The journal on powerfs (strict POSIX: a new file or directory survives a power cut only once its directory is
/// fsynced): every committed record survives a cut, including those in segment files FasterLog created on the way.
/// </summary>
public class PowerLossTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Committed_records_in_new_segments_survive_a_power_cut()
    {
        using PowerFs? fs = await PowerFs.MountAsync(output);
        if (fs is null) return;
        // The journal two levels below the mount: its own directory and its parent are made on the way.
        using var sizes = new TempJournalDirectory();
        var options = sizes.Options(Path.Combine(fs.MountPoint, "data", "journal"));
        var records = SameSize(5000, 600); // about 3 MiB: three 1 MiB segments, two of them made after the first commit
        WriteJournal(options, records);
        Assert.True(File.Exists(Path.Combine(options.DirectoryPath, "log", "journal.2")));

        await fs.CutAsync();

        var visitor = Reopen(options, out var journal);
        using (journal)
        {
            Assert.Equal(records, visitor.Records.Select(r => r.Record));
            Assert.Null(journal.TornTailCut);
        }
    }
}
