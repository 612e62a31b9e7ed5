namespace Switch.Engine.Pipeline;

/// <summary>
/// Where each ring slot's event went in the journal (record number, address): written by the journaler before its
/// sequence moves on, read by the logic after (the sequence orders them), so a snapshot knows the position of the last
/// event it holds. Not part of the event: it never goes into the journal.
/// </summary>
internal sealed class JournalPositions(int ringSize)
{
    private readonly SlotTable<(long RecordNo, long Address)> _slots = new(ringSize);

    public void Set(long sequence, long recordNo, long address) => _slots[sequence] = (recordNo, address);

    public (long RecordNo, long Address) Get(long sequence) => _slots[sequence];
}

/// <summary>A value per input ring slot, beside the ring (its size, a power of two): facts about a slot's event that
/// one consumer writes and a later one reads, the ring's sequences ordering them.</summary>
internal sealed class SlotTable<T>(int ringSize) where T : struct
{
    private readonly T[] _items = new T[ringSize];
    private readonly int _mask = ringSize - 1;

    public ref T this[long sequence] => ref _items[(int)(sequence & _mask)];
}
