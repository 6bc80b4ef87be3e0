using ActorSim.Persistence.Journal;
using Npgsql;

namespace ActorSim.Persistence.Tests;

/// <summary>Reading in global order never skips an event, although PostgreSQL transactions commit
/// their sequence numbers out of order.</summary>
public sealed class GlobalOrderTests(SchemaFixture schema) : IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task A_reader_racing_concurrent_appends_sees_every_event_exactly_once()
    {
        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        const int writers = 8, appendsPerWriter = 12;
        var rnd = new Random(5);
        var delays = Enumerable.Range(0, writers * appendsPerWriter).Select(_ => rnd.Next(0, 30)).ToArray();
        var rolledBack = 0;

        // Streams for "late" appends: created here, then written with raw inserts that take a sequence
        // number and commit only after a delay, so later numbers commit first.
        for (var w = 0; w < writers; w++)
        {
            await using var session = store.LightweightSession();
            session.Events.Append($"late-{w}", 1, new JournalEntry { WriterGuid = "late" });
            await session.SaveChangesAsync();
        }
        string type, dotnetType;
        await using (var c = new NpgsqlConnection(PostgresSchema.ConnectionString))
        {
            await c.OpenAsync();
            await using var q = new NpgsqlCommand($"select type, mt_dotnet_type from {schema.Name}.mt_events where stream_id = 'late-0'", c);
            await using var r = await q.ExecuteReaderAsync();
            await r.ReadAsync();
            (type, dotnetType) = (r.GetString(0), r.GetString(1));
        }
        var lateVersions = new long[writers];

        async Task LateAppend(int w, int delayMs)
        {
            await using var c = new NpgsqlConnection(PostgresSchema.ConnectionString);
            await c.OpenAsync();
            await using var tx = await c.BeginTransactionAsync();
            await using (var ins = new NpgsqlCommand($"insert into {schema.Name}.mt_events (seq_id, id, stream_id, version, data, type, mt_dotnet_type) " +
                                                     $"values (nextval('{schema.Name}.mt_events_sequence'), gen_random_uuid(), @s, @v, '{{}}'::jsonb, @t, @d)", c))
            {
                ins.Parameters.AddWithValue("s", $"late-{w}");
                ins.Parameters.AddWithValue("v", 2 + lateVersions[w]++);
                ins.Parameters.AddWithValue("t", type);
                ins.Parameters.AddWithValue("d", dotnetType);
                await ins.ExecuteNonQueryAsync();
            }
            await Task.Delay(delayMs); // the row has its number; others commit meanwhile
            await tx.CommitAsync();
        }

        async Task Writer(int w)
        {
            long version = 0;
            for (var i = 0; i < appendsPerWriter; i++)
            {
                await using var session = store.LightweightSession();
                // Every fifth append takes its sequence numbers and then rolls back (as an append that
                // fails does), leaving a permanent gap that stays open while the transaction lives.
                if (i % 5 == 2)
                {
                    await LateAppend(w, delays[w * appendsPerWriter + i] + 20);
                    continue;
                }
                var rollBack = i % 5 == 4;
                if (rollBack)
                {
                    await using var c = new NpgsqlConnection(PostgresSchema.ConnectionString);
                    await c.OpenAsync();
                    await using var tx = await c.BeginTransactionAsync();
                    await using var cmd = new NpgsqlCommand($"select nextval('{schema.Name}.mt_events_sequence'), nextval('{schema.Name}.mt_events_sequence')", c);
                    await cmd.ExecuteNonQueryAsync();
                    await Task.Delay(delays[w * appendsPerWriter + i]);
                    await tx.RollbackAsync();
                    Interlocked.Increment(ref rolledBack);
                    continue;
                }
                session.Events.Append($"gw-{w}", version + 2, new JournalEntry { WriterGuid = $"{w}" }, new JournalEntry { WriterGuid = $"{w}" });
                await Task.Delay(delays[w * appendsPerWriter + i]); // hold the transaction open
                await session.SaveChangesAsync();
                version += 2;
            }
        }

        var seen = new List<long>();
        var done = false;
        var reader = Task.Run(async () =>
        {
            long after = 0;
            while (true)
            {
                var finished = Volatile.Read(ref done);
                var page = await GlobalOrder.ReadAfterAsync(store, after, 50);
                foreach (var e in page)
                {
                    if (e.StreamKey!.StartsWith("gw-") || e.Version > 1) seen.Add(e.Sequence);
                    after = e.Sequence;
                }
                if (page.Count == 0)
                {
                    if (finished) break;
                    await Task.Delay(2);
                }
            }
        });
        await Task.WhenAll(Enumerable.Range(0, writers).Select(Writer));
        Volatile.Write(ref done, true);
        await reader;

        await using var conn = new NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"select seq_id from {schema.Name}.mt_events where stream_id like 'gw-%' or (stream_id like 'late-%' and version > 1) order by seq_id", conn);
        var all = new List<long>();
        await using (var r = await cmd.ExecuteReaderAsync()) while (await r.ReadAsync()) all.Add(r.GetInt64(0));

        var rollbacks = Enumerable.Range(0, appendsPerWriter).Count(i => i % 5 == 4);
        var lates = Enumerable.Range(0, appendsPerWriter).Count(i => i % 5 == 2);
        Assert.Equal(writers * rollbacks, rolledBack);
        Assert.Equal(writers * ((appendsPerWriter - rollbacks - lates) * 2 + lates), all.Count);
        Assert.True(all.Zip(all.Skip(1)).Any(p => p.Second != p.First + 1), "no gap in the sequence: the rollbacks were not exercised");
        Assert.Equal(all, seen); // every committed event, once, in order
    }
}
