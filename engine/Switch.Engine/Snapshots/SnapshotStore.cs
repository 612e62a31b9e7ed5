using System.Globalization;

namespace Switch.Engine.Snapshots;

/// <summary>The snapshots of a data directory (<c>snapshots/</c>): newest first, retention, and setting aside one
/// that could not be used (renamed <c>.skipped</c>, kept for a person to look at, never tried again).</summary>
public sealed class SnapshotStore(string dataDirectory)
{
    public string Directory { get; } = Path.Combine(dataDirectory, "snapshots");
    /// <summary>Where retired journal records go (<see cref="Journal.JournalArchive"/>).</summary>
    public static string JournalArchiveDirectory(string dataDirectory) => Path.Combine(dataDirectory, "journal-archive");

    /// <summary>Published snapshots (temporaries and skipped ones excluded), the newest position first.</summary>
    public IReadOnlyList<(long RecordNo, string Path)> List()
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        var found = new List<(long, string)>();
        foreach (string path in System.IO.Directory.EnumerateFiles(Directory, "snapshot-*" + SnapshotFile.Extension))
        {
            string name = Path.GetFileNameWithoutExtension(path);
            if (long.TryParse(name.AsSpan("snapshot-".Length), NumberStyles.None, CultureInfo.InvariantCulture, out long recordNo))
                found.Add((recordNo, path));
        }
        found.Sort((a, b) => b.Item1.CompareTo(a.Item1));
        return found;
    }

    /// <summary>The archive checkpoint a snapshot names, from its companion file; null if it has none.</summary>
    public static string? ArchiveToken(string snapshotPath)
    {
        string companion = snapshotPath + SnapshotFile.ArchiveExtension;
        return File.Exists(companion) ? File.ReadAllText(companion).Trim() : null;
    }

    public static void SetAside(string snapshotPath)
    {
        File.Move(snapshotPath, snapshotPath + ".skipped", overwrite: true);
        string companion = snapshotPath + SnapshotFile.ArchiveExtension;
        if (File.Exists(companion)) File.Move(companion, companion + ".skipped", overwrite: true);
    }

    /// <summary>Deletes all but the newest <paramref name="keep"/> snapshots and any temporary a crash left; returns the
    /// archive checkpoints the kept ones name.</summary>
    public HashSet<string> Retain(int keep)
    {
        var tokens = new HashSet<string>();
        IReadOnlyList<(long RecordNo, string Path)> all = List();
        for (int i = 0; i < all.Count; i++)
        {
            string path = all[i].Path;
            if (i < keep)
            {
                if (ArchiveToken(path) is { } token) tokens.Add(token);
                continue;
            }
            // Paced (Journal.FileReclaimer): a snapshot is hundreds of MB, and its unlink's trim held the journal's commits.
            Journal.FileReclaimer.Shared.Delete(path);
            Journal.FileReclaimer.Shared.Delete(path + SnapshotFile.ArchiveExtension);
        }
        if (System.IO.Directory.Exists(Directory))
        {
            Journal.FileReclaimer.Shared.ReclaimLeftovers(Directory, "snapshot-*");
            foreach (string temp in System.IO.Directory.EnumerateFiles(Directory, "*.tmp")) File.Delete(temp);
        }
        return tokens;
    }
}
