using Akka.Hosting;
using Npgsql;

namespace ActorSim.Persistence;

/// <summary>Akka.Hosting: <c>builder.WithMartenPersistence(connectionString)</c> or
/// <c>builder.WithMartenPersistence(dataSource)</c> makes the Marten journal, snapshot store and read
/// journal the defaults (plugin ids in <see cref="MartenPersistence"/>).</summary>
public static class MartenPersistenceHosting
{
    public static AkkaConfigurationBuilder WithMartenPersistence(this AkkaConfigurationBuilder builder, string connectionString,
        string schema = MartenStores.DefaultSchema, int maxEventsPerCommit = 1000, TimeSpan? outageLimit = null) =>
        builder.AddHocon(MartenPersistence.Config(connectionString, schema, maxEventsPerCommit, outageLimit: outageLimit), HoconAddMode.Prepend);

    public static AkkaConfigurationBuilder WithMartenPersistence(this AkkaConfigurationBuilder builder, NpgsqlDataSource dataSource,
        string schema = MartenStores.DefaultSchema, int maxEventsPerCommit = 1000)
    {
        var name = $"{schema}/{System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(dataSource):x}";
        MartenStores.RegisterDataSource(name, dataSource);
        return builder.AddHocon(MartenPersistence.Config(null, schema, maxEventsPerCommit, dataSource: name), HoconAddMode.Prepend);
    }
}
