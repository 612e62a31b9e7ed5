using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Switch.Engine.Client;

/// <summary>Objects kept for reuse, at most <paramref name="maxRetained"/> (a burst makes more; the collector takes the
/// extra back). Any thread.</summary>
internal sealed class FreeList<T>(int maxRetained) where T : class
{
    private readonly ConcurrentQueue<T> _free = new();
    private int _count;

    /// <summary>Objects kept now.</summary>
    public int Count => Volatile.Read(ref _count);

    public bool TryTake([NotNullWhen(true)] out T? item)
    {
        if (!_free.TryDequeue(out item)) return false;
        Interlocked.Decrement(ref _count);
        return true;
    }

    /// <summary>Keeps <paramref name="item"/> unless <paramref name="maxRetained"/> are kept already.</summary>
    public void Give(T item)
    {
        if (Interlocked.Increment(ref _count) > maxRetained)
        {
            Interlocked.Decrement(ref _count);
            return;
        }
        _free.Enqueue(item);
    }
}
