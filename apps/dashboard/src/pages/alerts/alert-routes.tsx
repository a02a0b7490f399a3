import type { RouteObject } from 'react-router';
import { AlertsPage } from './firing/alerts-page';
import { SilencesPage } from './silences/silences-page';
import { SilenceEditPage } from './silences/silence-edit-page';
import { MaintenancePage } from './maintenance/maintenance-page';
import { WindowEditPage } from './maintenance/window-edit-page';
import { RulesPage } from './rules/rules-page';
import { RuleEditPage } from './rules/rule-edit-page';
import { ChannelsPage } from './channels/channels-page';
import { ChannelEditPage } from './channels/channel-edit-page';
import { DeliveriesPage } from './deliveries/deliveries-page';
import { AlertHistoryPage } from './history/alert-history-page';
import { PerId } from '../../stored-draft';

/** The alerting pages (issue 18), signed-in routes under /alerts; an edit form mounted afresh for each id. */
export const alertRoutes: RouteObject[] = [
  { path: 'alerts', element: <AlertsPage /> },
  { path: 'alerts/silences', element: <SilencesPage /> },
  { path: 'alerts/silences/new', element: <SilenceEditPage /> },
  { path: 'alerts/maintenance', element: <MaintenancePage /> },
  { path: 'alerts/maintenance/new', element: <WindowEditPage /> },
  {
    path: 'alerts/maintenance/:id',
    element: (
      <PerId>
        <WindowEditPage />
      </PerId>
    ),
  },
  { path: 'alerts/rules', element: <RulesPage /> },
  { path: 'alerts/rules/new', element: <RuleEditPage /> },
  {
    path: 'alerts/rules/:id',
    element: (
      <PerId>
        <RuleEditPage />
      </PerId>
    ),
  },
  { path: 'alerts/channels', element: <ChannelsPage /> },
  { path: 'alerts/channels/new', element: <ChannelEditPage /> },
  {
    path: 'alerts/channels/:id',
    element: (
      <PerId>
        <ChannelEditPage />
      </PerId>
    ),
  },
  { path: 'alerts/deliveries', element: <DeliveriesPage /> },
  { path: 'alerts/history', element: <AlertHistoryPage /> },
];
