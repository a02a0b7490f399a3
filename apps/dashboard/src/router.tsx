import { createBrowserRouter } from 'react-router';
import { Shell } from './shell';
import { LoginPage } from './pages/login/login-page';
import { OverviewPage } from './pages/overview/overview-page';
import { TargetsPage } from './pages/targets/targets-page';
import { TargetDetailPage } from './pages/target-detail/target-detail-page';
import { ChecksPage } from './pages/checks/checks-page';
import { CheckEditPage } from './pages/checks/check-edit-page';
import { HostsPage } from './pages/hosts/hosts-page';
import { HostDetailPage } from './pages/hosts/host-detail-page';
import { FleetPage } from './pages/fleet/fleet-page';
import { FleetConfigPage } from './pages/fleet-config/fleet-config-page';
import { alertRoutes } from './pages/alerts/alert-routes';
import { NotFoundPage } from './pages/not-found';
import { InstancesPage } from './pages/instances/instances-page';
import { ApiKeysPage } from './pages/api-keys/api-keys-page';
import { UsersPage } from './pages/users/users-page';
import { publicStatusRoutes, statusPageRoutes } from './pages/status-pages/status-page-routes';
import { PerId } from './stored-draft';

export const router = createBrowserRouter([
  { path: '/login', element: <LoginPage /> },
  ...publicStatusRoutes,
  {
    element: <Shell />,
    children: [
      { index: true, element: <OverviewPage /> },
      { path: 'targets', element: <TargetsPage /> },
      { path: 'targets/:id', element: <TargetDetailPage /> },
      { path: 'instances', element: <InstancesPage /> },
      { path: 'checks', element: <ChecksPage /> },
      { path: 'checks/new', element: <CheckEditPage /> },
      {
        path: 'checks/:id',
        element: (
          <PerId>
            <CheckEditPage />
          </PerId>
        ),
      },
      { path: 'hosts', element: <HostsPage /> },
      { path: 'hosts/:id', element: <HostDetailPage /> },
      { path: 'fleet', element: <FleetPage /> },
      { path: 'fleet/config', element: <FleetConfigPage /> },
      ...alertRoutes,
      ...statusPageRoutes,
      { path: 'settings/api-keys', element: <ApiKeysPage /> },
      { path: 'settings/users', element: <UsersPage /> },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
]);
