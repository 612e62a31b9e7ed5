namespace Switch.Engine.Pipeline;

/// <summary>
/// Where each ring slot's event went in the journal (record number, address): written by the journaler before its
/// sequence moves on, read by the logic after (the sequence orders them), so a snapshot knows the position of the last
/// event it holds. Not part of the event: it never goes into the journal.
/// </summary>
internal sealed class JournalPositions(int ringSize)
{
    private readonly long[] _recordNo = new long[ringSize];
    private readonly long[] _address = new long[ringSize];
    private readonly int _mask = ringSize - 1;

    public void Set(long sequence, long recordNo, long address)
    {
        int i = (int)(sequence & _mask);
        _recordNo[i] = recordNo;
        _address[i] = address;
    }

    public (long RecordNo, long Address) Get(long sequence)
    {
        int i = (int)(sequence & _mask);
        return (_recordNo[i], _address[i]);
    }
}
