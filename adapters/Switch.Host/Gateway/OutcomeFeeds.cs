using Switch.Engine.Business;
using Switch.Engine.Events;

namespace Switch.Host.Gateway;

/// <summary>
/// One institution's final outcomes in feed order (1, 2, 3...), the latest <c>retention</c> of them in memory,
/// with a pulse for live followers. It is a view derived from the journal: at start it is rebuilt by replay,
/// so it never needs its own durability. Entries are flat structs (no object per outcome for the garbage collector
/// to promote and mark); a subscriber's read makes the wire messages.
/// </summary>
public sealed class OutcomeFeed
{
    private readonly ResultFields[] _ring;
    private readonly long _mask;
    private readonly object _gate = new();
    private long _last;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _changedObserved;
    private long _maxLag;

    public OutcomeFeed(int retention)
    {
        if (retention <= 0 || (retention & (retention - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(retention), "a power of two");
        _ring = new ResultFields[retention];
        _mask = retention - 1;
    }

    public long LastFeedNo { get { lock (_gate) return _last; } }

    /// <summary>The most outcomes a subscriber still had to read when it asked, since the last call (metrics).</summary>
    public long TakeMaxLag()
    {
        lock (_gate)
        {
            long lag = _maxLag;
            _maxLag = 0;
            return lag;
        }
    }

    public void Append(in ResultFields outcome)
    {
        TaskCompletionSource? wake = null;
        lock (_gate)
        {
            if (outcome.FeedNo != _last + 1)
            {
                throw new InvalidOperationException($"outcome feed: feed number {outcome.FeedNo} after {_last}");
            }
            _ring[(outcome.FeedNo - 1) & _mask] = outcome;
            _last = outcome.FeedNo;
            if (_changedObserved)
            {
                // Only swap the pulse when someone waits on it: no allocation per outcome otherwise.
                wake = _changed;
                _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _changedObserved = false;
            }
        }
        wake?.TrySetResult();
    }

    /// <summary>
    /// Copies outcomes from <paramref name="fromFeedNo"/> on (at most <paramref name="max"/>) into
    /// <paramref name="into"/>. Returns false when <paramref name="fromFeedNo"/> is older than what is retained.
    /// <paramref name="changed"/> completes when something is appended after this read.
    /// </summary>
    public bool TryRead(long fromFeedNo, int max, List<ResultFields> into, out long oldestRetained, out Task changed)
    {
        lock (_gate)
        {
            oldestRetained = Math.Max(1, _last - _ring.Length + 1);
            _changedObserved = true;
            changed = _changed.Task;
            if (fromFeedNo < oldestRetained && _last >= oldestRetained)
            {
                return false;
            }
            _maxLag = Math.Max(_maxLag, _last - fromFeedNo + 1);
            for (long f = fromFeedNo; f <= _last && into.Count < max; f++)
            {
                into.Add(_ring[(f - 1) & _mask]); // copied under the lock; the caller makes the messages outside it
            }
            return true;
        }
    }
}

/// <summary>Every institution's feed, by institution index.</summary>
public sealed class OutcomeFeeds(int institutions, int retention)
{
    private readonly OutcomeFeed[] _feeds = Enumerable.Range(0, institutions).Select(_ => new OutcomeFeed(retention)).ToArray();

    public OutcomeFeed For(int institutionIndex) => _feeds[institutionIndex];

    public void Append(in OutputEvent feed) => _feeds[feed.InstitutionIndex].Append(ResultFields.From(feed));

    /// <summary>During replay at start: rebuilds the feeds from the recomputed outputs, drops everything else.</summary>
    public IOutputSink ReplaySink() => new FeedReplaySink(this);

    private sealed class FeedReplaySink(OutcomeFeeds feeds) : IOutputSink
    {
        private OutputEvent _scratch;

        public ref OutputEvent Begin()
        {
            _scratch.Reset();
            return ref _scratch;
        }

        public void End()
        {
            if (_scratch.Kind == OutputKind.Feed)
            {
                feeds.Append(_scratch);
            }
        }
    }
}
