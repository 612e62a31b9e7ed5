using System.Globalization;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Snapshots;
using Switch.Journal;

namespace Switch.Host.Gateway;

/// <summary>Every institution's feed, by institution index, under <c>&lt;data&gt;/feeds/&lt;index, 4 digits&gt;/</c>.</summary>
public sealed class OutcomeFeeds : IDisposable
{
    private readonly string _root;
    private readonly int _segmentRecords;
    private readonly long _retentionUs;
    private readonly WriteBehind? _writeBehind;
    private readonly OutcomeFeed?[] _feeds = new OutcomeFeed?[SwitchConfig.MaxInstitutions];
    private readonly object _gate = new();
    // The writer's feeds with appends not yet flushed (writer thread only).
    private readonly List<OutcomeFeed> _dirty = new();
    private int _replayOver;

    /// <param name="writeBehind">Starts the writeback of what the feeds append (<see cref="OutcomeFeed"/>); null: none.</param>
    public OutcomeFeeds(string dataDirectory, int segmentRecords, long retentionUs, WriteBehind? writeBehind = null)
    {
        _writeBehind = writeBehind;
        _root = Path.Combine(dataDirectory, "feeds");
        _segmentRecords = segmentRecords;
        _retentionUs = retentionUs;
        Directory.CreateDirectory(_root);
        // Open what is on disk now, so the replay's end checks every feed, also one the journal no longer feeds.
        foreach (string dir in Directory.EnumerateDirectories(_root))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int index) && index < _feeds.Length)
            {
                For(index);
            }
        }
    }

    public OutcomeFeed For(int institutionIndex)
    {
        OutcomeFeed? feed = Volatile.Read(ref _feeds[institutionIndex]);
        if (feed is not null) return feed;
        lock (_gate)
        {
            return _feeds[institutionIndex] ??= new OutcomeFeed(
                Path.Combine(_root, institutionIndex.ToString("D4", CultureInfo.InvariantCulture)), _segmentRecords, _retentionUs, _writeBehind);
        }
    }

    /// <summary>The output thread's append. Its first call here (or to <see cref="Flush"/>) ends the replay if the host
    /// has not yet: the engine's threads run before the host's own call comes.</summary>
    public void Append(in OutputEvent feed)
    {
        if (Volatile.Read(ref _replayOver) == 0) EndReplay();
        AppendOne(feed);
    }

    /// <summary>Makes everything appended readable (the output thread, at the end of each batch).</summary>
    public void Flush()
    {
        if (Volatile.Read(ref _replayOver) == 0) EndReplay(); // the replay's appends are the host's until it ends
        foreach (OutcomeFeed f in _dirty)
        {
            f.Flush();
            f.Dirty = false;
        }
        _dirty.Clear();
    }

    /// <summary>After the replay at start: each feed's files agree with the journal, and are readable.</summary>
    public void EndReplay()
    {
        lock (_gate)
        {
            if (_replayOver != 0) return;
            foreach (OutcomeFeed? f in _feeds)
            {
                if (f is null) continue;
                f.EndReplay();
                f.Dirty = false;
            }
            _dirty.Clear();
            Volatile.Write(ref _replayOver, 1);
        }
    }

    /// <summary>
    /// At a snapshot's mark (the output thread): every feed flushed, and per institution (by index) its last outcome's
    /// record; <paramref name="toSync"/> gets the files to fsync before the snapshot is published.
    /// </summary>
    public void WriteMark(StateWriter w, List<string> toSync)
    {
        Flush();
        w.Section("feeds");
        var marks = new List<(int Index, byte[] Record)>();
        for (int i = 0; i < _feeds.Length; i++)
        {
            OutcomeFeed? f = Volatile.Read(ref _feeds[i]);
            if (f is null) continue;
            ResultFields last = f.MarkAt(toSync);
            if (last.FeedNo == 0) continue;
            byte[] record = new byte[FeedRecord.Bytes];
            FeedRecord.Write(last, record);
            marks.Add((i, record));
        }
        toSync.Add(_root);
        w.Int(marks.Count);
        foreach ((int index, byte[] record) in marks)
        {
            w.Int(index);
            w.Array<byte>(record);
        }
    }

    /// <summary>At a start from a snapshot, before the replay after it: what <see cref="WriteMark"/> wrote.</summary>
    public void RestoreMark(ref StateReader r)
    {
        r.Section("feeds");
        int count = r.Int();
        if (count < 0 || count > _feeds.Length) throw new InvalidDataException($"snapshot views: {count} outcome feeds");
        int previous = -1;
        for (int n = 0; n < count; n++)
        {
            int index = r.Int();
            if (index <= previous || index >= _feeds.Length) throw new InvalidDataException($"snapshot views: outcome feed {index} after {previous}");
            previous = index;
            For(index).RestoreMark(r.Array<byte>(FeedRecord.Bytes));
        }
    }

    /// <summary>Undoes <see cref="RestoreMark"/> (the engine tries an older snapshot, or the whole journal).</summary>
    public void ForgetMark()
    {
        foreach (OutcomeFeed? f in _feeds) f?.ForgetMark();
    }

    /// <summary>During replay at start: catches a feed up from a recomputed outcome (made readable by <see cref="EndReplay"/>).</summary>
    internal void AppendReplayed(in OutputEvent feed) => AppendOne(feed);

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (OutcomeFeed? f in _feeds) f?.Dispose();
        }
    }

    private void AppendOne(in OutputEvent evt)
    {
        OutcomeFeed f = For(evt.InstitutionIndex);
        f.Append(ResultFields.From(evt));
        if (!f.Dirty)
        {
            f.Dirty = true;
            _dirty.Add(f);
        }
    }
}
