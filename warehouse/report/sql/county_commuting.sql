-- Commuting balance of every county from the county matrix (latest year); the report's county first.
select county_code, county_name as county, year, employed_residents, jobs, live_and_work, in_commuters,
       out_commuters, net_commuting, self_containment_supply, self_containment_demand, largest_outflow_name,
       largest_outflow{{ prov }}
from marts.mart_county_commuting
where year = (select max(year) from marts.mart_county_commuting)
order by county_code <> $county, county_code
