-- The largest flows between two different municipalities touching the county (both sexes, latest year).
-- Filtered in DuckDB: for all of Sweden the fact has 1.26 M rows, ~0.5 GB of RSS as pandas objects.
with flows as (
    select year, residence_code, residence_name, workplace_code, workplace_name, commuters{{ prov }}
    from marts.fct_commuting_flows
    where sex_code = 'total' and year = (select max(year) from marts.fct_commuting_flows)
),

residents as (
    select residence_code, sum(commuters) as employed_residents from flows group by residence_code
)

select year, residence_name, workplace_name, commuters,
       commuters / nullif(employed_residents, 0) * 100 as share_of_residents{{ prov }}
from flows inner join residents using (residence_code)
where residence_code <> workplace_code
  and (starts_with(residence_code, $county) or starts_with(workplace_code, $county))
order by commuters desc, residence_code, workplace_code
limit $top_n
