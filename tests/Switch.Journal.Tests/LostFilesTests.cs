using static Switch.Journal.Tests.JournalTestKit;

namespace Switch.Journal.Tests;

/// <summary>
/// What a power cut on storage that did not keep the journal's files would leave: a journal missing a file it made.
/// Open refuses it, naming the file, and never starts a fresh log over it (which would reuse everything from record 0).
/// </summary>
public class LostFilesTests
{
    [Fact]
    public void A_missing_segment_file_is_refused_not_cut_as_a_torn_tail()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options();
        WriteJournal(options, SameSize(3000, 600)); // about 1.9 MB: two 1 MiB segments
        string second = Path.Combine(temp.Path, "log", "journal.1");
        Assert.True(File.Exists(second));
        File.Delete(second);

        var error = Assert.Throws<JournalCorruptException>(() => EventJournal.Open(options).Dispose());
        Assert.Equal(JournalCorruptionReason.Missing, error.Reason);
        Assert.StartsWith($"Journal unusable: Missing: segment file {second} is missing", error.Message);
    }

    [Fact]
    public void The_only_segment_missing_is_refused()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options();
        WriteJournal(options, SameSize(10, 100));
        File.Delete(Path.Combine(temp.Path, "log", "journal.0"));

        var error = Assert.Throws<JournalCorruptException>(() => EventJournal.Open(options).Dispose());
        Assert.Equal(JournalCorruptionReason.Missing, error.Reason);
        Assert.Contains("journal.0 is missing", error.Message);
    }

    [Fact]
    public void A_segment_emptied_of_every_committed_record_is_refused_not_cut()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options();
        WriteJournal(options, SameSize(10, 100));
        string first = Path.Combine(temp.Path, "log", "journal.0");
        using (var file = new FileStream(first, FileMode.Open, FileAccess.Write)) file.SetLength(0);

        using var journal = EventJournal.Open(options);
        var error = Assert.Throws<JournalCorruptException>(() => journal.Replay(new CollectingVisitor()));
        Assert.Contains("no record before it survives", error.Message);
        Assert.Null(journal.TornTailCut); // nothing was cut: a second start refuses the same way
    }

    [Fact]
    public void A_manifest_without_its_commit_file_is_refused()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options();
        WriteJournal(options, SameSize(10, 100));
        Directory.Delete(Path.Combine(temp.Path, "commits"), recursive: true);

        var error = Assert.Throws<JournalCorruptException>(() => EventJournal.Open(options).Dispose());
        Assert.Equal(JournalCorruptionReason.Missing, error.Reason);
        Assert.Contains("the journal was lost", error.Message);
        Assert.False(Directory.Exists(Path.Combine(temp.Path, "commits"))); // refused before anything was made
    }

    [Fact]
    public void Commits_without_the_manifest_are_refused()
    {
        using var temp = new TempJournalDirectory();
        var options = temp.Options();
        WriteJournal(options, SameSize(10, 100));
        File.Delete(Path.Combine(temp.Path, "manifest"));

        var error = Assert.Throws<JournalCorruptException>(() => EventJournal.Open(options).Dispose());
        Assert.Equal(JournalCorruptionReason.Missing, error.Reason);
        Assert.Contains("manifest", error.Message);
    }

    [Fact]
    public void A_journal_that_never_committed_opens_empty_again()
    {
        // Made, then killed before its first commit: nothing was ever acknowledged, so it is simply empty.
        using var temp = new TempJournalDirectory();
        var options = temp.Options();
        using (var journal = EventJournal.Open(options))
        {
            journal.Replay(new CollectingVisitor());
            journal.Append(MakeRecord(0, 50));
        }
        var visitor = Reopen(options, out var reopened);
        using (reopened) Assert.Empty(visitor.Records);
    }
}
