namespace ActorSim.Persistence.Journal;

/// <summary>Which of the journal's writers commits a call. A call goes to the writer of its stream's
/// latest call still queued or committing, so a stream's calls commit in the order they came (each
/// writer commits its queue in order); a stream with nothing pending goes to the writer with the fewest
/// calls pending. An Akka write call is one persistent actor's, so one stream. A call naming several
/// streams (direct use of the journal) still goes whole to one writer; should one of its streams have a
/// call pending on another writer, the two are not ordered, and the stream's expected version makes the
/// later one fail rather than write out of order. Not thread-safe: the caller locks.</summary>
internal sealed class WriterRouting(int writers)
{
    private readonly int[] _pending = new int[Math.Max(1, writers)];
    private readonly Dictionary<string, (int Writer, int Pending)> _streams = new(StringComparer.Ordinal);

    public int Writers => _pending.Length;

    /// <summary>Calls routed to each writer and not yet done.</summary>
    public IReadOnlyList<int> Pending => _pending;

    /// <summary>The writer for a call writing <paramref name="streams"/> (each named once).</summary>
    public int Route(IReadOnlyList<string> streams)
    {
        var writer = -1;
        foreach (var pid in streams)
            if (_streams.TryGetValue(pid, out var s))
            {
                writer = s.Writer;
                break;
            }
        if (writer < 0)
        {
            writer = 0;
            for (var i = 1; i < _pending.Length; i++)
                if (_pending[i] < _pending[writer]) writer = i;
        }
        foreach (var pid in streams) _streams[pid] = (writer, _streams.GetValueOrDefault(pid).Pending + 1);
        _pending[writer]++;
        return writer;
    }

    /// <summary>A call routed to <paramref name="writer"/> is done (written or failed).</summary>
    public void Done(int writer, IReadOnlyList<string> streams)
    {
        _pending[writer]--;
        foreach (var pid in streams)
        {
            var s = _streams[pid];
            if (s.Pending == 1) _streams.Remove(pid);
            else _streams[pid] = (s.Writer, s.Pending - 1);
        }
    }
}
